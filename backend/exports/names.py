"""Names made safe for files: the one sanitiser the exports, the labeller and the viewer use."""

from __future__ import annotations

import re


def safe_stem(name, default: str = "scene") -> str:
    """A name (a scene's, from its capture files; a class label) as a file stem that cannot leave
    `out` ("../../x"): ASCII letters, digits, ".", "_" and "-", at most 80 characters. The one
    sanitiser of names for files; USD prim names add their own rule on top (objects.usd_name)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).lstrip("._")[:80]
    return stem or default
