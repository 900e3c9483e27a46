"""A query's life, without ever blocking Blender's UI and without bpy.

    validate -> health check (worker thread) -> capture (main thread, one frame per step)
             -> upload + query (worker thread) -> done / failed / cancelled

`QueryRunner.step()` is called on the main thread (a bpy.app.timers callback, or `wait()` in scripts
and tests). The tool interface is small: `frames`, a generator that captures one view per `next()`
and returns the capture (with a `.scene`), and `connect`, which opens a client (shared.client.Client
or anything with health/upload/query). Failures come early and in words: a query that breaks the
protocol's limits is refused before anything runs, a backend that does not answer its health check
is reported before the capture starts, and one overall deadline bounds the whole query.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ...shared.client import BackendError, Client, CurveKeys
from ...shared.protocol import QUERY_MODES, ProtocolError
from ...shared.queries import check_query
from .scan import lift_options
from .selection import plain_words

HEALTH_TIMEOUT_S = 4.0  # a backend that is down is reported within 5 s
DEADLINE_S = 900.0


class QueryError(ValueError):
    """A query that cannot be sent as it is (said in words, before anything runs)."""


def validate_query(mode: str, text: str, box=None, points=()) -> str:
    """The query's text, stripped, or a QueryError saying what is wrong with it. The protocol's own
    check (shared.queries.check_query, the one the client and server apply) decides the limits.
    `points`: click prompts [x, y, label] of a lift query (a positive one stands in for the box)."""
    text = (text or "").strip()
    if mode in QUERY_MODES and mode != "lift" and not text:
        raise QueryError("type a query first")
    options = {}
    if mode == "lift" and points:
        try:
            options = lift_options(0, box, points)
        except ValueError as error:
            raise QueryError(str(error)) from None
    elif mode == "lift":
        values = [float(v) for v in box] if box is not None else []
        if len(values) != 4 or not all(math.isfinite(v) for v in values):
            raise QueryError("draw a box over the camera view first (four finite numbers x1, y1, x2, y2)")
        if values[2] - values[0] < 2 or values[3] - values[1] < 2:
            raise QueryError("draw a box over the camera view first (the box is empty)")
        options = {"frame": 0, "box": values}
    try:
        check_query(mode, text, options)
    except ProtocolError as error:
        raise QueryError(str(error)) from None
    return text


@dataclass(frozen=True)
class Backend:
    """Where the backend is and how long to wait: `timeout` without any word from it (progress and
    keep-alives count), `health_timeout` for the check before capture, `deadline` for everything."""

    address: str
    curve_folder: str = ""
    timeout: float = 60.0
    health_timeout: float = HEALTH_TIMEOUT_S
    deadline: float = DEADLINE_S

    def connect(self) -> Client:
        curve = CurveKeys.from_folder(self.curve_folder) if self.curve_folder else None
        return Client(self.address, timeout=self.timeout, retries=0, curve=curve)


class QueryRunner:
    CHECKING, CAPTURING, WAITING = "checking", "capturing", "waiting"
    DONE, FAILED, CANCELLED = "done", "failed", "cancelled"

    def __init__(
        self,
        mode: str,
        text: str,
        options: dict,
        frames: Iterator,
        backend: Backend,
        connect: Callable[[], Client] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.mode, self.text, self.options = mode, text, dict(options)
        self.backend = backend
        self.state, self.stage, self.fraction = self.CHECKING, "health", 0.0
        self.error, self.result, self.capture = "", None, None
        self.frames_captured = 0
        self._frames, self._connect, self._clock = frames, connect or backend.connect, clock
        self.started = clock()
        self._events: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._check, name="scene-r1-health", daemon=True)
        self._thread.start()

    @property
    def finished(self) -> bool:
        return self.state in (self.DONE, self.FAILED, self.CANCELLED)

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop: the capture restores the scene; the backend is asked to drop the query."""
        self._cancel.set()
        if self.state in (self.CHECKING, self.CAPTURING):
            self._frames.close()
            self.state, self.error = self.CANCELLED, reason

    def step(self) -> None:
        """Advance on the main thread: one captured frame, or the worker thread's news."""
        if self.finished:
            return
        if self._clock() - self.started > self.backend.deadline:
            self._fail(f"no result within the overall deadline of {self.backend.deadline:g} s; the query was stopped")
            return
        if self.state == self.CAPTURING:
            self._capture_one()
            return
        while not self.finished:
            try:
                kind, value = self._events.get_nowait()
            except queue.Empty:
                return
            self._handle(kind, value)

    def _fail(self, message: str) -> None:
        self._cancel.set()
        if self.state in (self.CHECKING, self.CAPTURING):
            self._frames.close()
        self.state, self.error = self.FAILED, message

    def _handle(self, kind: str, value) -> None:
        if kind == "healthy":
            self.state, self.stage = self.CAPTURING, "capture"
        elif kind == "progress":
            self.stage = value.get("stage", self.stage)
            self.fraction = value.get("done", 0) / max(value.get("total", 1), 1)
        elif kind == "result":
            self.result, self.state = value, self.DONE
        elif kind == "error":
            if value.startswith("cancelled"):
                self.state, self.error = self.CANCELLED, value
            else:
                self._fail(value)

    def _capture_one(self) -> None:
        try:
            done, total = next(self._frames)
            self.frames_captured, self.stage, self.fraction = done, "capture", done / total
        except StopIteration as finished:
            self.capture, self.state = finished.value, self.WAITING
            self._thread = threading.Thread(target=self._talk, name="scene-r1-query", daemon=True)
            self._thread.start()
        except Exception as error:  # noqa: BLE001 - a capture failure is the query's failure
            self._fail(f"capture failed: {plain_words(error)}")

    def _check(self) -> None:
        """Worker thread: is the backend there? (before any capture)"""
        try:
            with self._connect() as client:
                client.health(timeout=self.backend.health_timeout)
            self._events.put(("healthy", None))
        except BackendError as error:
            self._events.put(("error", self._unreachable(error)))
        except Exception as error:  # noqa: BLE001 - reported in Blender, never raised in a thread
            self._events.put(("error", f"{type(error).__name__}: {plain_words(error)}"))

    def _unreachable(self, error: BackendError) -> str:
        if error.code == "unavailable":
            return (
                f"the backend at {self.backend.address} did not answer within {self.backend.health_timeout:g} s:"
                " start it (`scene-r1 serve`, or Start local backend in the add-on's preferences)"
            )
        return f"the backend refused the health check: {plain_words(error)}"

    def _talk(self) -> None:
        """Worker thread: upload (once per scene content) and query."""
        try:
            with self._connect() as client:
                self._events.put(("progress", {"stage": "upload", "done": 0, "total": 1}))
                # A scan's recorded frames are held by the backend already: named by their hash.
                key = getattr(self.capture, "scene_hash", None) or client.upload(self.capture.scene)
                result = client.query(
                    key,
                    self.mode,
                    self.text,
                    on_progress=lambda p: self._events.put(("progress", p)),
                    cancel=self._cancel,
                    **self.options,
                )
            self._events.put(("result", result))
        except BackendError as error:
            self._events.put(("error", "cancelled" if error.code == "cancelled" else plain_words(error)))
        except Exception as error:  # noqa: BLE001 - reported in Blender, never raised in a thread
            self._events.put(("error", f"{type(error).__name__}: {plain_words(error)}"))

    def wait(self, timeout: float | None = None, interval: float = 0.02) -> None:
        """Step until finished (headless scripts and tests; the UI uses a timer instead). Bounded by
        the overall deadline, or `timeout` seconds when given."""
        limit = self.backend.deadline if timeout is None else timeout
        end = self._clock() + limit
        while not self.finished:
            if self._clock() > end:
                self._fail(f"no result within {limit:g} s; the query was stopped")
                return
            self.step()
            if self.state in (self.CHECKING, self.WAITING):
                time.sleep(interval)
