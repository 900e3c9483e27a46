"""Query-independent work done while the backend has no query to run (issue 20).

After a query, the segmenter's image embeddings of the scene's key-frame views
(geometry.keyframes.key_frame_views: chosen by camera motion alone) are computed one view at a
time, so a later query about another object finds the views it needs already encoded. Each step
holds the pipeline's lock for one encode, so a query that arrives waits at most that long; answers
never depend on it (the embeddings are those a query would compute, stored in the same cache).
"""

from __future__ import annotations

import threading
import weakref

from ..geometry.keyframes import key_frame_views
from .cache import SceneWorkCache, scene_key


def segmenter_views(tracker, scene) -> list[int]:
    """The scene's key-frame views when the segmenter encodes frames one by one (MobileSAM); none for
    the others (geometric, SAM2's video model)."""
    settings = getattr(getattr(tracker, "settings", None), "key_frames", None)
    if settings is None or not hasattr(getattr(tracker, "model", None), "set_frame"):
        return []
    return key_frame_views(scene.poses, settings)


class Warmer:
    """The scene last queried and its views (computed once per scene, under the pipeline's lock);
    encodes the views on request, one per step."""

    def __init__(self):
        self._scene = None  # a weak reference: the server's scene cache decides how long a scene lives
        self.key = ""
        self.views: list[int] = []
        self._pending: list[int] = []

    def remember(self, scene, tracker) -> None:
        """Called by a query, with the pipeline's lock held."""
        key = scene_key(scene)
        if key != self.key:
            self._scene, self.key = weakref.ref(scene), key
            self.views = segmenter_views(tracker, scene)
            self._pending = list(self.views)

    def forget(self, key: str) -> None:
        """The scene left the server's cache: nothing more to do for it."""
        if key == self.key:
            self._scene, self.key, self.views, self._pending = None, "", [], []

    @property
    def pending(self) -> int:
        """Views of the scene last queried that no step has encoded yet (cheap: health reads it)."""
        return len(self._pending)

    def step(self, tracker, lock: threading.Lock, cache: SceneWorkCache) -> bool:
        """Encode one pending view; True while more remain."""
        with lock, cache.for_scene(self.key):  # remember() runs under the same lock: no scene swaps midway
            scene = self._scene() if self._scene is not None else None
            if scene is None or not self._pending:
                self._pending = []
                return False
            index = self._pending.pop(0)
            tracker.model.set_frame(index, scene.frame(index).rgb)
            return bool(self._pending)
