#!/usr/bin/env bash
# The main job from a fresh machine: build the backend environment if needed, then run the demo.
# Arguments go to `scene-r1 demo` (e.g. --out DIR).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh backend
exec .venv/bin/scene-r1 demo "$@"
