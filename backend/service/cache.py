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
        self.work = None  # the pipeline's SceneWorkCache (pipeline/cache.py): its bytes count against the same budget

    def get(self, key: str) -> CachedScene | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
            return entry

    def put(self, key: str, scene: Scene, nbytes: int) -> None:
        with self.lock:
            scene.cache_key = key  # the pipeline's work cache files its entries under the content hash
            self.entries[key] = CachedScene(scene, nbytes)
            self.entries.move_to_end(key)
        self.fit()

    def fit(self) -> None:
        """Drop least recently used scenes (with their cached work) until scenes + work fit the
        budget; then, if one scene alone is left, trim the work cache to what remains."""
        with self.lock:
            work = self.work.stats.nbytes if self.work is not None else 0
            while sum(e.nbytes for e in self.entries.values()) + work > self.max_bytes and len(self.entries) > 1:
                key, _ = self.entries.popitem(last=False)
                if self.work is not None:
                    self.work.drop_scene(key)
                    work = self.work.stats.nbytes
            if self.work is not None:
                self.work.shrink_to(max(0, self.max_bytes - sum(e.nbytes for e in self.entries.values())))

    def keys(self) -> list[str]:
        with self.lock:
            return list(self.entries)
