"""The Hypothesis profile of tests/conftest.py: no example database, and fixed examples under CI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")

CHECK = """
from hypothesis import settings
print(settings().database is None, settings().derandomize)
"""


def profile_under(ci: str | None) -> str:
    """What the suite's conftest loads, seen from a pytest run in a fresh process."""
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": ci} if ci is not None else {})
    test = Path(__file__).parent / "test_hypothesis_profile.py"
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", f"{test}::test_print_profile"],
        env=env | {"SCENE_R1_PRINT_PROFILE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return next(line for line in out.stdout.splitlines() if line.startswith("profile:"))


def test_print_profile():
    if os.environ.get("SCENE_R1_PRINT_PROFILE"):
        settings = hypothesis.settings()
        print(f"profile: database={settings.database} derandomize={settings.derandomize}")


def test_no_database_ever_and_derandomized_under_ci():
    assert hypothesis.settings().database is None
    assert profile_under("true") == "profile: database=None derandomize=True"
    assert profile_under(None) == "profile: database=None derandomize=False"
