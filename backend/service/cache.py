"""The backend's scene cache: decoded scenes by content hash, with each scene's memo of finished
results, all counted in one byte budget; least recently used dropped first."""

from __future__ import annotations

import collections
import json
import threading
from dataclasses import dataclass, field

from ...shared.scene import Scene

MAX_RESULTS_PER_SCENE = 32


@dataclass
class CachedScene:
    scene: Scene
    nbytes: int
    # memo key -> (payload, arrays, bytes); oldest first
    results: collections.OrderedDict = field(default_factory=collections.OrderedDict)

    @property
    def total_bytes(self) -> int:
        return self.nbytes + sum(entry[2] for entry in self.results.values())


def memo_key(mode: str, text: str, options: dict) -> str:
    """The same question about the same scene: mode, text and options (sorted), no_cache aside."""
    kept = {k: v for k, v in options.items() if k != "no_cache"}
    return json.dumps([mode, text, kept], sort_keys=True, ensure_ascii=True)


class SceneCache:
    """Scenes by content hash and their results, least recently used dropped first when the
    total (scenes and results) is over `max_bytes`."""

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
            self._shrink()

    def result(self, key: str, memo: str) -> tuple[dict, dict] | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is None or memo not in entry.results:
                return None
            entry.results.move_to_end(memo)
            payload, arrays, _ = entry.results[memo]
            return payload, arrays

    def put_result(self, key: str, memo: str, payload: dict, arrays: dict) -> None:
        nbytes = len(json.dumps(payload, default=str)) + sum(a.nbytes for a in arrays.values())
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                return
            entry.results[memo] = (payload, arrays, nbytes)
            entry.results.move_to_end(memo)
            while len(entry.results) > MAX_RESULTS_PER_SCENE:
                entry.results.popitem(last=False)
            self._shrink()

    def _shrink(self) -> None:
        while self.total_bytes() > self.max_bytes:
            newest_key, newest = next(reversed(self.entries.items()))
            if len(self.entries) > 1:
                dropped, _ = self.entries.popitem(last=False)  # the least recently used scene, with its results
                if self.work is not None:
                    self.work.drop_scene(dropped)  # and its cached work
            elif newest.results:
                newest.results.popitem(last=False)  # one scene left: its oldest results go first
            elif self.work is not None and self.work.stats.nbytes:
                self.work.shrink_to(max(0, self.max_bytes - newest.total_bytes))  # then its cached work
            else:
                break  # a lone scene over budget stays: it was just asked for

    def total_bytes(self) -> int:
        work = self.work.stats.nbytes if self.work is not None else 0
        return work + sum(entry.total_bytes for entry in self.entries.values())

    def keys(self) -> list[str]:
        with self.lock:
            return list(self.entries)

    def stats(self) -> dict:
        with self.lock:
            results = sum(len(e.results) for e in self.entries.values())
            return {"scenes": len(self.entries), "results": results, "bytes": self.total_bytes()}
