"""The declared Python floor covers the standard library the code uses, and ruff targets that floor."""

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEEDS = {"tomllib": (3, 11)}  # standard-library modules newer than some Python we might declare


def test_requires_python_covers_the_stdlib_in_use_and_ruff_targets_it():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    floor = tuple(int(v) for v in re.fullmatch(r">=\s*(\d+)\.(\d+)", project["project"]["requires-python"]).groups())
    assert project["tool"]["ruff"]["target-version"] == f"py{floor[0]}{floor[1]}"
    sources = [p for p in ROOT.rglob("*.py") if not any(_skipped(part) for part in p.relative_to(ROOT).parts)]
    for module, version in NEEDS.items():
        users = [p for p in sources if re.search(rf"^\s*(import|from) {module}\b", p.read_text("utf-8"), re.M)]
        assert not users or floor >= version, f"{module} needs Python {version}; used in {users[0]}"
    assert sys.version_info[:2] >= floor


def _skipped(part: str) -> bool:
    """Environments (.venv*), caches and build outputs: not our source."""
    return part.startswith(".") or part in ("models", "build", "dist", "runs", "out", "__pycache__")
