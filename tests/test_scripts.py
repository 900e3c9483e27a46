"""scripts/setup.sh and scripts/test.sh, sourced for their functions (never run here: they rebuild
the shared environments): an environment whose Python is missing is skipped with a line, not fatal."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


SOURCED_GUARD = '"${BASH_SOURCE[0]}"'


def bash(script: str) -> subprocess.CompletedProcess:
    for name in ("setup.sh", "test.sh"):  # without its guard, sourcing a script would build environments
        assert SOURCED_GUARD in (ROOT / "scripts" / name).read_text(), f"scripts/{name} runs when sourced"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_setup_skips_a_blender_environment_whose_python_is_missing(tmp_path):
    venv = tmp_path / "venv-blender-x"
    done = bash(
        f"source scripts/setup.sh && BLENDER_VERSIONS=('9.9.9:{venv}:{tmp_path}/no-python3.13:constraints.txt')"
        " && setup_blender && echo finished"
    )
    assert done.returncode == 0 and done.stdout.strip() == "finished", done.stderr
    assert f"skipping {venv} (bpy 9.9.9): no {tmp_path}/no-python3.13" in done.stderr
    assert not venv.exists()


def test_the_suite_skips_a_missing_environment_and_says_so(tmp_path):
    done = bash(f'source scripts/test.sh && run blender-x {tmp_path}/python tests/shared && echo "status=$status"')
    assert done.returncode == 0, done.stderr
    assert f"skipping blender-x: {tmp_path}/python is absent" in done.stdout and "status=0" in done.stdout
