"""The layout is the architecture: one installed package, scene_r1, and an extension root."""

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_declared():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"scene_r1"} | {
        "scene_r1." + ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("addon", "shared", "backend")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert found == declared


def source_copy(tmp_path) -> Path:
    """The tracked source, copied out of the checkout, so that a build never writes into it."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True)
    if files.returncode != 0:
        pytest.skip("needs a git checkout to know the tracked files")
    copy = tmp_path / "source"
    for name in files.stdout.splitlines():
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    return copy


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("wheel")
    source = source_copy(tmp_path)
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path)]
    subprocess.run([*command, str(source)], check=True, timeout=300)
    return next(tmp_path.glob("scene_r1-*.whl"))


def test_wheel_holds_only_scene_r1_with_its_model_and_licence(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"scene_r1", next(t for t in tops if t.endswith(".dist-info"))}
    assert "scene_r1/shared/scene.py" in names and "scene_r1/backend/cli/main.py" in names
    assert "scene_r1/models/scene-r1-nano/model.safetensors" in names  # the offline fallback is package data
    assert not any(n.startswith(("scene_r1/tests/", "scene_r1/benchmarks/")) for n in names)
    assert any(n.endswith("LICENSE") for n in names)
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert re.search(r"scene-r1\s*=\s*scene_r1\.backend\.cli:main", entry_points)


@pytest.mark.slow
def test_installed_wheel_runs_the_demo_with_the_shipped_model(wheel, tmp_path):
    """A normal (non-editable) install in a fresh venv finds scene-r1-nano and runs the language step.
    The heavy dependencies come from this environment's site-packages through a .pth line (no
    network); scene_r1 itself comes only from the wheel."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    ours = [p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir()]
    Path(site, "dependencies.pth").write_text("\n".join(map(str, ours)) + "\n")
    where = subprocess.run([python, "-c", "import scene_r1; print(scene_r1.__file__)"], capture_output=True, text=True)
    assert where.stdout.startswith(site), where.stdout + where.stderr  # the wheel's copy, not the checkout
    demo = subprocess.run(
        [venv / "bin" / "scene-r1", "demo", "--out", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "not found" not in demo.stdout and "scene-r1-nano" in demo.stdout
    assert "find an object by language" in demo.stdout  # the language step ran with the shipped model


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
