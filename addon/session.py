"""A query's life in Blender without ever blocking the UI.

QueryRunner is a small state machine driven by `step()` on the main thread (from a
bpy.app.timers callback, or a loop in scripts and tests): it captures one frame per step, then
hands the upload and the query to a worker thread that owns the ZeroMQ socket, and finally
gives back the reply for the main thread to apply. Progress, errors and cancel flow through a
queue; nothing touches bpy off the main thread.
"""
from __future__ import annotations

import queue
import threading
import time

from ..shared.client import BackendError, Client, CurveKeys
from .capture import capture_frames


class QueryRunner:
    CAPTURING, WAITING, DONE, FAILED, CANCELLED = "capturing", "waiting", "done", "failed", "cancelled"

    def __init__(self, context, plan, mode: str, text: str, options: dict, address: str, curve_folder: str = "",
                 timeout: float = 60.0, samples: int = 8):
        self.mode, self.text, self.options = mode, text, dict(options)
        self.address, self.timeout = address, timeout
        self.curve = CurveKeys.from_folder(curve_folder) if curve_folder else None
        self.state = self.CAPTURING
        self.stage, self.fraction = "capture", 0.0
        self.error = ""
        self.reply = None
        self.capture = None
        self.started = time.monotonic()
        self._frames = capture_frames(context, plan, samples=samples)
        self._events: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._thread = None

    @property
    def finished(self) -> bool:
        return self.state in (self.DONE, self.FAILED, self.CANCELLED)

    def cancel(self) -> None:
        self._cancel.set()
        if self.state == self.CAPTURING:
            self._frames.close()  # restores the scene's render settings and camera
            self.state, self.error = self.CANCELLED, "cancelled"

    def step(self) -> None:
        """Advance on the main thread: one captured frame, or the worker's news."""
        if self.state == self.CAPTURING:
            try:
                done, total = next(self._frames)
                self.stage, self.fraction = "capture", done / total
            except StopIteration as finished:
                self.capture = finished.value
                self.state = self.WAITING
                self._thread = threading.Thread(target=self._talk, name="scene-r1-query", daemon=True)
                self._thread.start()
            except Exception as error:  # noqa: BLE001 - a capture failure is the query's failure
                self.state, self.error = self.FAILED, f"capture failed: {error}"
            return
        while True:
            try:
                kind, value = self._events.get_nowait()
            except queue.Empty:
                return
            if kind == "progress":
                self.stage = value.get("stage", self.stage)
                self.fraction = value.get("done", 0) / max(value.get("total", 1), 1)
            elif kind == "result":
                self.reply, self.state = value, self.DONE
            elif kind == "error":
                self.state = self.CANCELLED if value.startswith("cancelled") else self.FAILED
                self.error = value

    def _talk(self) -> None:
        """Worker thread: upload (once per scene content) and query."""
        try:
            with Client(self.address, timeout=self.timeout, curve=self.curve) as client:
                self._events.put(("progress", {"stage": "upload", "done": 0, "total": 1}))
                key = client.upload(self.capture.scene)
                reply = client.query(key, self.mode, self.text, on_progress=lambda p: self._events.put(("progress", p)),
                                     cancel=self._cancel, **self.options)
            self._events.put(("result", reply))
        except BackendError as error:
            self._events.put(("error", "cancelled" if error.code == "cancelled" else str(error)))
        except Exception as error:  # noqa: BLE001 - reported in Blender, never raised in a thread
            self._events.put(("error", f"{type(error).__name__}: {error}"))

    def wait(self, timeout: float = 300.0, interval: float = 0.02) -> None:
        """Step until finished (scripts and tests; the UI uses a timer instead)."""
        deadline = time.monotonic() + timeout
        while not self.finished and time.monotonic() < deadline:
            self.step()
            if self.state == self.WAITING:
                time.sleep(interval)
