"""ComfyLoad drill nodes: a ComfyUI custom node pack for load and fault drills.

Copy or link this folder into any ComfyUI's `custom_nodes/` (the suite links it into the local
ComfyUI it starts). Every node here is never cached (IS_CHANGED returns NaN, which never equals
itself), so a drill always does its work, and every node passes an optional IMAGE through so it
can sit anywhere in a workflow or stand alone as an output node.
"""
import random
import time

try:  # inside ComfyUI
    import comfy.model_management as model_management
except ImportError:  # imported outside ComfyUI (unit tests, linting)
    model_management = None

_ANY_IMAGE = {"optional": {"image": ("IMAGE",)}}
# Server-side counters for Fault's `fail_times`: how often each key has failed so far.
_FAILURES_BY_KEY = {}


def _raise_if_interrupted():
    if model_management is not None:
        model_management.throw_exception_if_processing_interrupted()


def _sleep_interruptibly(seconds):
    """Sleep in short slices so /interrupt stops a drill within ~20 ms."""
    deadline = time.monotonic() + seconds
    while True:
        _raise_if_interrupted()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.02))


class _DrillNode:
    CATEGORY = "comfyload/drills"
    OUTPUT_NODE = True
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        return float("nan")


class Sleep(_DrillNode):
    """Waits a fixed number of seconds: a workload whose cost is known exactly."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seconds": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3600.0, "step": 0.001})},
                **_ANY_IMAGE}

    def run(self, seconds, image=None):
        _sleep_interruptibly(seconds)
        return (image,)


class Fault(_DrillNode):
    """Fails on purpose: `error` raises a RuntimeError, `oom` raises torch's OutOfMemoryError so
    ComfyUI takes its real OOM path (it unloads all models). `probability` fails only that share
    of runs; `fail_times` > 0 fails only the first N runs per `key`, then passes (a transient
    fault a retry should overcome)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "mode": (["error", "oom"],),
                "probability": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
                "fail_times": ("INT", {"default": 0, "min": 0, "max": 1_000_000}),
                "key": ("STRING", {"default": ""}),
            },
            **_ANY_IMAGE,
        }

    def run(self, mode, probability, fail_times, key, image=None):
        _raise_if_interrupted()
        if fail_times > 0:
            failed = _FAILURES_BY_KEY.get(key, 0)
            if failed >= fail_times:
                return (image,)
            _FAILURES_BY_KEY[key] = failed + 1
        elif random.random() >= probability:
            return (image,)
        if mode == "oom":
            import torch
            raise torch.cuda.OutOfMemoryError("ComfyLoad Fault node: simulated out of memory")
        raise RuntimeError("ComfyLoad Fault node: simulated failure")


def _device():
    if model_management is not None:
        return model_management.get_torch_device()
    import torch
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Burn(_DrillNode):
    """Matrix multiplications on ComfyUI's device for N iterations: real GPU (or CPU) work of a
    chosen size, with progress, stoppable by /interrupt."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"iterations": ("INT", {"default": 100, "min": 1, "max": 10_000_000}),
                             "size": ("INT", {"default": 1024, "min": 16, "max": 16384})},
                **_ANY_IMAGE}

    def run(self, iterations, size, image=None):
        import torch
        import comfy.utils
        device = _device()
        a = torch.randn(size, size, device=device)
        b = torch.randn(size, size, device=device)
        bar = comfy.utils.ProgressBar(iterations)
        for i in range(iterations):
            _raise_if_interrupted()
            a = torch.tanh(a @ b)
            bar.update_absolute(i + 1, iterations)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (image,)


class VRAMHog(_DrillNode):
    """Allocates `mib` MiB on ComfyUI's device and holds it for `seconds`: squeezes the memory
    other prompts (and models) can use, to drive ComfyUI towards its real OOM path."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mib": ("INT", {"default": 1024, "min": 1, "max": 1_048_576}),
                             "seconds": ("FLOAT", {"default": 10.0, "min": 0.0, "max": 3600.0, "step": 0.1})},
                **_ANY_IMAGE}

    def run(self, mib, seconds, image=None):
        import torch
        hog = torch.empty(mib * 1024 * 1024, dtype=torch.uint8, device=_device())
        hog.fill_(1)  # touch the pages so the memory is really taken
        try:
            _sleep_interruptibly(seconds)
        finally:
            del hog
        return (image,)


NODE_CLASS_MAPPINGS = {"Sleep": Sleep, "Fault": Fault, "Burn": Burn, "VRAMHog": VRAMHog}
NODE_DISPLAY_NAME_MAPPINGS = {"Sleep": "Sleep (ComfyLoad drill)", "Fault": "Fault (ComfyLoad drill)",
                              "Burn": "Burn (ComfyLoad drill)", "VRAMHog": "VRAM hog (ComfyLoad drill)"}
