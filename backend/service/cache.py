"""The backend's scene cache: decoded scenes by content hash, least recently used dropped first."""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field

from ...shared.scene import Scene


@dataclass
class CachedScene:
    scene: Scene
    nbytes: int
    results: dict = field(default_factory=dict)  # (mode, text, options) -> (payload, arrays)


class SceneCache:
    """Scenes by content hash, least recently used dropped first when over `max_bytes`."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.entries: collections.OrderedDict[str, CachedScene] = collections.OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> CachedScene | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
            return entry

    def put(self, key: str, scene: Scene, nbytes: int) -> None:
        with self.lock:
            self.entries[key] = CachedScene(scene, nbytes)
            self.entries.move_to_end(key)
            while sum(e.nbytes for e in self.entries.values()) > self.max_bytes and len(self.entries) > 1:
                self.entries.popitem(last=False)

    def keys(self) -> list[str]:
        with self.lock:
            return list(self.entries)
