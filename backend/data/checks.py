"""Checks on what capture folders say about themselves (scene.json's types, sizes, versions and
file paths), each failure one SceneError naming the file: the readers' input validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ...shared.scene import MAX_IMAGE_SIDE, SceneError


def inside(folder: Path, relative, meta_path: Path) -> Path:
    """A file named in scene.json: a relative path that stays inside the scene folder."""
    if not isinstance(relative, str) or not relative or Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise SceneError(f"{meta_path}: frame file {str(relative)[:80]!r} must be a path inside the scene folder")
    return folder / relative


def size_pair(meta: dict, key: str, meta_path: Path) -> tuple[int, int]:
    size = meta.get(key)
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_IMAGE_SIDE for v in size)
    ):
        raise SceneError(f"{meta_path}: {key} must be [width, height], whole numbers from 1 to {MAX_IMAGE_SIDE}")
    return size[0], size[1]


def canonical_meta(meta_path: Path, newest_version: int) -> dict:
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise SceneError(f"{meta_path} is not valid UTF-8 JSON: {str(error)[:200]}") from None
    except OSError as error:
        raise SceneError(f"cannot read {meta_path}: {error.strerror or error}") from None
    if not isinstance(meta, dict):
        raise SceneError(f"{meta_path} must hold a JSON object")
    version = meta.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise SceneError(f"{meta_path}: version must be a whole number, got {str(version)[:20]!r}")
    if version > newest_version:
        raise SceneError(f"{meta_path} is version {version}; this Scene-R1 reads up to {newest_version}")
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames or not all(isinstance(f, dict) for f in frames):
        raise SceneError(f"{meta_path}: frames must be a non-empty list of objects")
    scale = meta.get("depth_scale", 0.001)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < 1e3:
        raise SceneError(f"{meta_path}: depth_scale must be a positive number of metres per unit")
    if not isinstance(meta.get("name", ""), str):
        raise SceneError(f"{meta_path}: name must be a string")
    return meta


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header alone (PIL reads no pixels here)."""
    try:
        with Image.open(path) as image:
            size = image.size
    except FileNotFoundError:
        raise SceneError(f"missing file: {path}") from None
    except Exception as error:
        raise SceneError(f"cannot read image header of {path}: {error}") from None
    if not all(0 < side <= MAX_IMAGE_SIDE for side in size):
        raise SceneError(f"{path} is {size[0]}x{size[1]}; sides must be between 1 and {MAX_IMAGE_SIDE} pixels")
    return size


def load_matrix(path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        matrix = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except FileNotFoundError:
        raise SceneError(f"missing file: {path}") from None
    except OSError as error:  # a folder, a symlink loop, no permission
        raise SceneError(f"cannot read {path}: {error.strerror or error}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise SceneError(f"{path} does not hold a numeric matrix: {str(error)[:200]}") from None
    if matrix.shape != shape:
        raise SceneError(f"{path} holds a {matrix.shape[0]}x{matrix.shape[1]} matrix, expected {shape[0]}x{shape[1]}")
    return matrix
