"""One sanitiser of names for files (exports.names.safe_stem): scene names, object files and the
labeller's result folders use it; USD prim names are valid USD identifiers built on top of it."""

from pathlib import Path

import pytest

from scene_r1.backend.exports import names
from scene_r1.backend.exports.objects import usd_name

LABELS = ["chair", "coffee table", "../../etc/passwd", "küche", "3d printer", ".hidden", "a.b-c", "", "🙂"]

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("label", LABELS)
def test_labels_become_stems_and_usd_identifiers(label):
    from pxr import Sdf

    stem = names.safe_stem(label, "object")
    assert stem and "/" not in stem and not stem.startswith(".") and len(stem) <= 80
    assert Sdf.Path.IsValidIdentifier(usd_name(label)), usd_name(label)


def test_no_other_sanitiser_is_left():
    sources = [p for top in ("backend", "shared") for p in (ROOT / top).rglob("*.py")]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert "def _slug(" not in text and "def _usd_name(" not in text, path
        if path.name != "names.py":
            assert "def safe_stem(" not in text, path
