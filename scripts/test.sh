#!/usr/bin/env bash
# The whole test suite from a fresh machine: builds the environments if needed, then runs
#   - shared + backend tests in .venv (numpy 2, torch, open3d)
#   - shared + add-on + Blender tests in each .venv-blender* (bpy 5.0.1 and 4.2 LTS on numpy 1.26,
#     bpy 5.2.3 LTS on Python 3.13 and numpy 2)
# Extra arguments go to every pytest run (e.g. -k camera, -x).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

status=0
crashed=()
run() {  # run NAME PYTHON PATHS...; an environment that was not built (no Python for it) is skipped, said so
  local name="$1" python="$2"; shift 2
  printf '\n\033[1m== %s ==\033[0m\n' "$name"
  if [ ! -x "$python" ]; then
    echo "skipping $name: $python is absent (scripts/setup.sh did not build it; see its log)"
    crashed+=("$name skipped: no $python")
    return 0
  fi
  "$python" -m pytest -q -p no:cacheprovider --junitxml="$REPORTS/$name.xml" "$@"
  local code=$?
  if [ "$code" -ne 0 ]; then status=1; crashed+=("$name exited with $code"); fi
}
lint() {  # ruff's lint and format checks over the whole tree (config in pyproject.toml)
  printf '\n\033[1m== lint ==\033[0m\n'
  if ! .venv/bin/ruff check . || ! .venv/bin/ruff format --check .; then status=1; crashed+=("ruff found problems"); fi
}
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then return 0; fi  # sourced (by the tests): the functions only
scripts/setup.sh all || exit 1
REPORTS="$(mktemp -d)"
lint
run backend .venv/bin/python tests/test_structure.py tests/test_python_floor.py tests/test_hypothesis_profile.py tests/test_scripts.py \
  tests/shared tests/addon tests/backend tests/benchmarks "$@"
run blender-5.0 .venv-blender/bin/python tests/shared tests/addon tests/blender "$@"
run blender-4.2 .venv-blender-4.2/bin/python tests/shared tests/addon tests/blender "$@"
run blender-5.2 .venv-blender-5.2/bin/python tests/shared tests/addon tests/blender "$@"

# One closing line over all runs.
.venv/bin/python - "$REPORTS" <<'PY'
import sys, pathlib, xml.etree.ElementTree as ET
total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for report in sorted(pathlib.Path(sys.argv[1]).glob("*.xml")):
    for suite in ET.parse(report).getroot().iter("testsuite"):
        for key in total:
            total[key] += int(suite.get(key, 0))
failed = total["failures"] + total["errors"]
passed = total["tests"] - failed - total["skipped"]
print(f"\nall environments: {passed} passed, {failed} failed, {total['skipped']} skipped")
PY
rm -rf "$REPORTS"
# A run can pass every test and still fail (a crash at exit, a collection error): say so.
for line in "${crashed[@]}"; do echo "  $line"; done
exit $status
