"""Makes a Stable Diffusion 1.5 checkpoint with random weights, so the suite can load a real model
and run a real sampler where no checkpoint can be downloaded.

Runs with a ComfyUI's own Python, its working directory the ComfyUI tree (comfyload.orchestration.sd15_checkpoint
starts it that way): the UNet, the CLIP-L text encoder and the VAE are ComfyUI's own classes, and
the keys are written by ComfyUI's own SD15 saving functions, so CheckpointLoaderSimple detects it as
SD1.5 like a downloaded one. The weights follow torch's default initialisation from a fixed seed:
images are noise-like, but every seed and prompt gives a different one, and the arithmetic per step
is exactly SD1.5's.

Usage: python make_sd15_checkpoint.py OUT.safetensors RECIPE_JSON
"""

import json
import os
import sys
import time

import torch

# The UNet of SD1.5, as comfy.model_detection writes it for a diffusers SD1.5 UNet.
SD15_UNET = {
    "use_checkpoint": False,
    "image_size": 32,
    "out_channels": 4,
    "use_spatial_transformer": True,
    "legacy": False,
    "adm_in_channels": None,
    "in_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [2, 2, 2, 2],
    "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
    "channel_mult": [1, 2, 4, 4],
    "transformer_depth_middle": 1,
    "use_linear_in_transformer": False,
    "context_dim": 768,
    "num_heads": 8,
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    "use_temporal_attention": False,
    "use_temporal_resblock": False,
}
# The VAE of SD1.5 (comfy.sd.VAE's default AutoencoderKL configuration).
SD15_VAE = {
    "double_z": True,
    "z_channels": 4,
    "resolution": 256,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 128,
    "ch_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_resolutions": [],
    "dropout": 0.0,
}
INIT_TYPES = (
    torch.nn.Linear,
    torch.nn.Conv2d,
    torch.nn.Conv3d,
    torch.nn.GroupNorm,
    torch.nn.LayerNorm,
    torch.nn.Embedding,
)


def say(text: str) -> None:
    print(f"[sd15-checkpoint] {text}", file=sys.stderr, flush=True)


def initialise(module: torch.nn.Module) -> None:
    """torch's default initialisation for every layer. ComfyUI's layers skip it (they expect
    weights from a file), so it is called on the torch base class; anything left is N(0, 0.02)."""
    done = set()
    for m in module.modules():
        for base in INIT_TYPES:
            if isinstance(m, base):
                base.reset_parameters(m)
                done.update(id(p) for p in m.parameters(recurse=False))
                break
    for p in module.parameters():
        if id(p) not in done:
            p.data.normal_(0.0, 0.02)


def build(recipe: dict) -> dict:
    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # weights are made on the CPU, with or without a GPU
    import comfy.ldm.models.autoencoder
    import comfy.ldm.modules.diffusionmodules.openaimodel
    import comfy.ops
    import comfy.sd1_clip
    import comfy.supported_models

    dtype = getattr(torch, recipe["dtype"])
    torch.manual_seed(recipe["seed"])
    config = comfy.supported_models.SD15(dict(SD15_UNET, dtype=dtype))
    with torch.no_grad():
        say("building the UNet (860M parameters)")
        unet = comfy.ldm.modules.diffusionmodules.openaimodel.UNetModel(
            **dict(SD15_UNET, dtype=dtype), device="cpu", operations=comfy.ops.disable_weight_init
        )
        initialise(unet)
        state = config.process_unet_state_dict_for_saving(unet.state_dict())
        del unet
        say("building the CLIP-L text encoder (123M parameters)")
        clip = comfy.sd1_clip.SD1ClipModel(device="cpu", dtype=dtype)
        initialise(clip)
        state.update(config.process_clip_state_dict_for_saving(clip.state_dict()))
        del clip
        say("building the VAE (84M parameters)")
        vae = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=SD15_VAE, embed_dim=4).to(dtype)
        initialise(vae)
        state.update(config.process_vae_state_dict_for_saving(vae.state_dict()))
    return {k: v.to(dtype).contiguous() for k, v in state.items()}


def main(argv) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    out, recipe = argv[1], json.loads(argv[2])
    started = time.monotonic()
    state = build(recipe)
    import comfy.utils

    tmp = out + ".partial"
    say(f"writing {len(state)} tensors to {out}")
    comfy.utils.save_torch_file(state, tmp, metadata={"comfyload_recipe": json.dumps(recipe, sort_keys=True)})
    os.replace(tmp, out)  # atomic: a half-written file is never taken for a made one
    seconds = time.monotonic() - started
    say(f"made in {seconds:.0f} s, {os.path.getsize(out) / 2**30:.2f} GiB")
    print(
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "bytes": os.path.getsize(out),
                "parameters": sum(v.numel() for v in state.values()),
                "torch": torch.__version__,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
