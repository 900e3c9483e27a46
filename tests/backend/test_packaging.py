"""The layout is the architecture: one installed package, scene_r1, and an extension root."""

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_declared():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"scene_r1"} | {
        "scene_r1." + ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("addon", "shared", "backend")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert found == declared


def test_wheel_holds_only_scene_r1(tmp_path):
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools keeps stale files in build/
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    wheel = next(tmp_path.glob("scene_r1-*.whl"))
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"scene_r1", next(t for t in tops if t.endswith(".dist-info"))}
    assert "scene_r1/shared/scene.py" in names and "scene_r1/backend/cli.py" in names
    assert not any(n.startswith("scene_r1/tests/") for n in names)
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert re.search(r"scene-r1\s*=\s*scene_r1\.backend\.cli:main", entry_points)


def test_extension_manifest():
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    assert manifest["id"] == "scene_r1" and manifest["blender_version_min"] == "4.2.0"
    assert "network" in manifest["permissions"]
    assert "/backend/" in manifest["build"]["paths_exclude_pattern"]


def test_addon_and_shared_never_import_backend_or_torch():
    for top in ("addon", "shared", "__init__.py"):
        for path in [ROOT / top] if top.endswith(".py") else (ROOT / top).rglob("*.py"):
            text = path.read_text()
            assert not re.search(r"^\s*(from|import)\s+(torch|\.+backend|scene_r1\.backend)\b", text, re.M), path
            assert not re.search(r"^\s*(from|import)\s+(shared|backend)\b", text, re.M), f"{path}: use relative imports"
