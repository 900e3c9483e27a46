"""Frames of a video file by number, decoded with PyAV (FFmpeg's libraries): a seek to the key frame
before the one asked for, then decoding forwards; reading frames in order never seeks."""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

import numpy as np

from ....shared.scene import SceneError

# Reading ahead by up to this many frames is cheaper than seeking back to a key frame.
MAX_DECODE_AHEAD = 60


class VideoFrames:
    def __init__(self, path: Path):
        import av

        self.path = Path(path)
        if not self.path.is_file():
            raise SceneError(f"missing file: {self.path}")
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise SceneError(f"{self.path} holds no video stream")
                stream = container.streams.video[0]
                self.size = (int(stream.codec_context.width), int(stream.codec_context.height))
                declared = int(stream.frames or 0)
        except av.FFmpegError as error:
            raise SceneError(f"cannot open video {self.path}: {error}") from None
        if min(self.size) <= 0:
            raise SceneError(f"video {self.path} declares a {self.size[0]}x{self.size[1]} picture")
        self._declared = declared
        self._pts: list[int] | None = None
        self._container = self._stream = self._decoded = None
        self._last = -1
        self._lock = threading.Lock()

    def close(self) -> None:
        """Release the decoder and its file (a later frame() opens them again)."""
        with self._lock:
            if self._container is not None:
                self._finalizer.detach()
                self._container.close()
            self._container = self._stream = self._decoded = None
            self._last = -1

    def __enter__(self) -> VideoFrames:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def frame_count(self) -> int:
        return self._declared or len(self._index())

    def _index(self) -> list[int]:
        """Presentation times of every frame, from the packets alone (nothing is decoded)."""
        if self._pts is None:
            import av

            try:
                with av.open(str(self.path)) as container:
                    stream = container.streams.video[0]
                    self._pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None and p.size)
            except av.FFmpegError as error:
                raise SceneError(f"cannot read video {self.path}: {error}") from None
        return self._pts

    def frame(self, number: int) -> np.ndarray:
        """Frame `number` (0-based, presentation order) as HxWx3 uint8 RGB."""
        import av

        with self._lock:
            pts = self._index()
            if not 0 <= number < len(pts):
                raise SceneError(f"video {self.path.name} has {len(pts)} frames; frame {number} was asked for")
            target = pts[number]
            try:
                if self._container is None:
                    self._container = av.open(str(self.path))
                    self._finalizer = weakref.finalize(self, self._container.close)  # closed when dropped
                    self._stream = self._container.streams.video[0]
                if not self._last < number <= self._last + MAX_DECODE_AHEAD or self._decoded is None:
                    self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
                    self._decoded = self._container.decode(self._stream)
                for picture in self._decoded:
                    if picture.pts is not None and picture.pts >= target:
                        self._last = number
                        return picture.to_ndarray(format="rgb24")
            except av.FFmpegError as error:
                self._decoded, self._last = None, -1
                raise SceneError(f"cannot decode frame {number} of {self.path}: {error}") from None
            self._decoded, self._last = None, -1
            raise SceneError(f"video {self.path} ended before frame {number}")
