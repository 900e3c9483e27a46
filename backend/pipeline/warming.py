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
    """Remembers the scene last queried and encodes its key-frame views on request, one per step."""

    def __init__(self):
        self._scene = None  # a weak reference: the server's scene cache decides how long a scene lives
        self._done: set[int] = set()
        self._key = ""

    def remember(self, scene) -> None:
        key = scene_key(scene)
        if key != self._key:
            self._scene, self._key, self._done = weakref.ref(scene), key, set()

    def pending(self, tracker) -> list[int]:
        """The key-frame views of the scene last queried that no step has encoded yet."""
        scene = self._scene() if self._scene is not None else None
        return [] if scene is None else [i for i in segmenter_views(tracker, scene) if i not in self._done]

    def step(self, tracker, lock: threading.Lock, cache: SceneWorkCache) -> bool:
        """Encode one pending view; True while more remain."""
        pending = self.pending(tracker)
        scene = self._scene() if self._scene is not None else None
        if not pending or scene is None:
            return False
        with lock, cache.for_scene(self._key):
            self._done.add(pending[0])
            tracker.model.set_frame(pending[0], scene.frame(pending[0]).rgb)
        return len(pending) > 1
