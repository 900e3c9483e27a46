#!/usr/bin/env python3
"""Build the Blender extension zip: the root __init__.py, addon/, shared/, the manifest, LICENSE and
the pyzmq wheels for every platform Blender 4.2-5.2 runs on: Python 3.11 (Blender 4.2-5.0) and 3.13
(Blender 5.1-5.2; pyzmq serves it with its cp312-abi3 wheels). Never backend/ or torch.

    python scripts/build_extension.py [--out dist] [--wheels wheels]

Wheels are fetched once with `pip download` into --wheels and reused. Plain Python: no Blender
needed (the zip follows Blender's extension layout; `blender --command extension validate`
accepts it).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYZMQ = "pyzmq==27.3.0"  # the version constraints-blender.txt pins
PLATFORMS = {  # Blender platform -> pip platform tag
    "linux-x64": "manylinux_2_28_x86_64",
    "windows-x64": "win_amd64",
    "macos-arm64": "macosx_11_0_arm64",
    "macos-x64": "macosx_10_15_x86_64",
}
PYTHONS = ("3.11", "3.13")  # Blender 4.2-5.0, Blender 5.1-5.2
INCLUDE = ["__init__.py", "addon", "shared", "LICENSE", "README.md"]
REQUIRED = ["__init__.py", "addon", "shared", "LICENSE"]  # a zip without one of these is not built


def fetch_wheels(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for python in PYTHONS:
        for tag in PLATFORMS.values():
            command = [sys.executable, "-m", "pip", "download", PYZMQ, "--only-binary=:all:", "--no-deps"]
            command += ["--python-version", python, "--implementation", "cp", "--platform", tag]
            subprocess.run([*command, "--dest", str(folder), "--quiet"], check=True)
    version = PYZMQ.split("==")[1]
    wheels = sorted(folder.glob(f"pyzmq-{version}-*.whl"))
    missing = [
        f"{platform} (Python {python})"
        for python in PYTHONS
        for platform, tag in PLATFORMS.items()
        if not any(_fits(w.name, tag) and _serves(w.name, python) for w in wheels)
    ]
    if missing:
        raise SystemExit(f"no pyzmq {version} wheel for {', '.join(missing)} in {folder}")
    return wheels


def retag_for_blender(wheels: list[Path], folder: Path) -> list[Path]:
    """Blender's installer reads the Python versions an extension supports from its wheels' names,
    and drops an abi3 wheel's "any 3.x" as soon as a cp311 wheel is listed too: the zip would then
    claim 3.11 only and Blender 5.1+ (Python 3.13) would refuse it. pyzmq serves 3.13 with stable-ABI
    (abi3) wheels, so each is shipped as an explicit cp313 wheel: the same files, with the tag in
    its name, its WHEEL metadata and RECORD saying cp313."""
    out = []
    for wheel in wheels:
        distribution, version, python_tag, abi_tag, platform = wheel.name[: -len(".whl")].split("-")
        if abi_tag != "abi3":
            out.append(wheel)
            continue
        target = folder / "blender" / f"{distribution}-{version}-cp313-cp313-{platform}.whl"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            _rewrite_tags(wheel, target, f"{python_tag}-{abi_tag}-", "cp313-cp313-")
        out.append(target)
    return out


def _rewrite_tags(source: Path, target: Path, old: str, new: str) -> None:
    import base64
    import hashlib

    with zipfile.ZipFile(source) as inside:
        items = {info.filename: inside.read(info) for info in inside.infolist()}
    info_dir = next(name.split("/")[0] for name in items if name.endswith(".dist-info/WHEEL"))
    wheel_meta = items[f"{info_dir}/WHEEL"].decode().replace(f"Tag: {old}", f"Tag: {new}")
    items[f"{info_dir}/WHEEL"] = wheel_meta.encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(items[f"{info_dir}/WHEEL"]).digest()).rstrip(b"=").decode()
    record = [
        f"{info_dir}/WHEEL,sha256={digest},{len(items[f'{info_dir}/WHEEL'])}"
        if line.startswith(f"{info_dir}/WHEEL,")
        else line
        for line in items[f"{info_dir}/RECORD"].decode().splitlines()
    ]
    items[f"{info_dir}/RECORD"] = ("\n".join(record) + "\n").encode()
    partial = target.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in items.items():
            out.writestr(name, data)
    partial.replace(target)


def _serves(name: str, python: str) -> bool:
    """Whether a wheel runs on CPython `python`: its own version, or a stable-ABI (abi3) wheel of an
    older one (the rule Blender's extension installer applies)."""
    python_tag, abi_tag = name.split("-")[2:4]
    wanted = tuple(int(p) for p in python.split("."))
    built = (int(python_tag[2]), int(python_tag[3:]))
    return built == wanted or (abi_tag == "abi3" and built <= wanted)


def _fits(name: str, tag: str) -> bool:
    if tag.startswith("macosx"):  # a universal2 wheel serves both Mac architectures
        return "macosx" in name and (tag.rsplit("_", 1)[-1] in name or "universal2" in name)
    if tag.startswith("manylinux"):
        return "manylinux" in name and "x86_64" in name
    return tag in name


def build(out: Path, wheels_folder: Path) -> Path:
    manifest_text = (ROOT / "blender_manifest.toml").read_text(encoding="utf-8")
    manifest = tomllib.loads(manifest_text)
    wheels = retag_for_blender(fetch_wheels(wheels_folder), wheels_folder)
    listed = "wheels = [\n" + "".join(f'  "./wheels/{w.name}",\n' for w in wheels) + "]\n"
    manifest_text = re.sub(r"(?ms)^wheels = \[.*?\]\n", "", manifest_text)
    manifest_text = manifest_text.replace("\n[permissions]", "\n" + listed + "\n[permissions]", 1)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{manifest['id']}-{manifest['version']}.zip"
    absent = [name for name in REQUIRED if not (ROOT / name).exists()]
    if absent:
        raise SystemExit(f"cannot build the extension: {', '.join(absent)} missing in {ROOT}")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("blender_manifest.toml", manifest_text)
        for name in INCLUDE:
            path = ROOT / name
            files = (
                [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
            )
            for file in files:
                if "__pycache__" in file.parts or file.suffix == ".pyc":
                    continue
                archive.write(file, file.relative_to(ROOT).as_posix())
        for wheel in wheels:
            archive.write(wheel, f"wheels/{wheel.name}")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--wheels", type=Path, default=ROOT / "wheels")
    args = parser.parse_args()
    print(build(args.out, args.wheels))


if __name__ == "__main__":
    main()
