"""Queries waiting for, or running on, the backend's worker threads.

The socket thread submits jobs; `jobs` worker threads run them through a function given by the
server and put every message for the client (progress, result, error) in an outbox, which the
socket thread drains: only that thread ever touches the socket.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ...shared.protocol import Message, ProtocolError, error_message
from ...shared.scene import SceneError
from ..models.loading import ModelError
from ..pipeline.pipeline import Cancelled

log = logging.getLogger("scene_r1.service")

# Queries one client may have waiting: one socket sending hundreds would otherwise queue minutes of
# work ahead of every other client (and for nobody, once it has gone).
MAX_QUEUED_PER_CLIENT = 32


@dataclass
class QueryJob:
    """A query waiting for, or running on, a job thread (the client side's Future is shared.client.Job)."""

    route: list  # routing envelope (client identity) to answer through
    request_id: str
    scene_key: str
    mode: str
    text: str
    options: dict
    cancel: threading.Event = field(default_factory=threading.Event)
    reply: str = "result"  # the final reply's type ("scan.opened" for a scan.open job)


def job_key(route: list, request_id: str) -> tuple:
    """A job's identity: the client's routing envelope (its socket identity) and its request id."""
    return tuple(bytes(frame.bytes if hasattr(frame, "bytes") else frame) for frame in route), request_id


QUIET_AFTER_S = 10.0  # as jemalloc's default decay: memory a query freed is kept while queries keep coming


class JobRunner:
    """A queue of jobs, `threads` threads running them with `run(job, progress)`."""

    def __init__(
        self,
        run: Callable[[QueryJob, Callable], tuple[dict, dict]],
        threads: int = 1,
        idle: Callable[[], bool] | None = None,
        quiet: Callable[[], object] | None = None,
        quiet_after_s: float = QUIET_AFTER_S,
    ):
        """`idle()` does one small unit of query-independent work and says whether more remains; a
        thread with no job runs it (one thread at a time) until it says no or a job arrives.
        `quiet()` runs once when no job has come for `quiet_after_s` after that (the server gives
        freed memory back)."""
        self._run, self._idle = run, idle
        self._quiet, self._quiet_after_s = quiet, quiet_after_s
        self._idle_lock = threading.Lock()
        self.warming = False
        self.jobs: queue.Queue[QueryJob | None] = queue.Queue()
        self.outbox: queue.Queue[tuple[list, Message]] = queue.Queue()
        self.running: dict[tuple, QueryJob] = {}  # keyed by (client route, request id): ids are the client's own
        self.queued: dict[tuple, QueryJob] = {}
        self.lock = threading.Lock()
        self.served = 0
        self.threads = [
            threading.Thread(target=self._work, name=f"scene-r1-job-{i}", daemon=True) for i in range(threads)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)

    def submit(self, job: QueryJob) -> int | None:
        """Queue a job; None when this client's job of that request id is already on its way (a retry).
        Another client's request of the same id is its own job. ProtocolError("busy") when this
        client has MAX_QUEUED_PER_CLIENT jobs waiting."""
        key = job_key(job.route, job.request_id)
        with self.lock:
            if key in self.running or key in self.queued:
                return None
            if sum(1 for route, _ in self.queued if route == key[0]) >= MAX_QUEUED_PER_CLIENT:
                text = f"this client has {MAX_QUEUED_PER_CLIENT} queries waiting already; wait for them or cancel some"
                raise ProtocolError("busy", text)
            self.queued[key] = job
        self.jobs.put(job)
        return self.jobs.qsize()

    def cancel(self, route: list, request_id: str) -> bool:
        """Cancel the job of `request_id` sent by the client at `route`; a client cannot cancel another's."""
        key = job_key(route, request_id)
        with self.lock:
            job = self.running.get(key) or self.queued.get(key)
        if job is not None:
            job.cancel.set()
        return job is not None

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return len(self.running), len(self.queued)

    def keepalives(self) -> list[tuple[list, Message]]:
        with self.lock:
            jobs = list(self.running.values())
        return [(job.route, Message("progress", job.request_id, {"keepalive": True})) for job in jobs]

    def _take(self) -> QueryJob | None:
        """The next job; while there is none, the idle work, one unit at a time."""
        while self._idle is not None:
            try:
                return self.jobs.get_nowait()
            except queue.Empty:
                pass
            if not self._idle_lock.acquire(blocking=False):
                break  # another thread is at it
            try:
                self.warming = bool(self._idle())
            except Exception:  # noqa: BLE001 - idle work is optional: a failure must not take the worker down
                log.exception("idle work failed")
                self.warming = False
            finally:
                self._idle_lock.release()
            if not self.warming:
                break
        if self._quiet is not None:
            try:
                return self.jobs.get(timeout=self._quiet_after_s)
            except queue.Empty:
                try:
                    self._quiet()
                except Exception:  # noqa: BLE001 - like the idle work: optional, never fatal
                    log.exception("quiet-time work failed")
        return self.jobs.get()

    def _work(self) -> None:
        while True:
            job = self._take()
            if job is None:
                return
            key = job_key(job.route, job.request_id)
            with self.lock:
                self.queued.pop(key, None)
                if not job.cancel.is_set():
                    self.running[key] = job
            if job.cancel.is_set():
                text = "the query was cancelled before it started"
                self._reply(job, error_message(job.request_id, "cancelled", text))
                continue
            try:
                self._reply(job, self._answer(job))
            finally:
                with self.lock:
                    self.running.pop(key, None)
                    self.served += 1

    def _answer(self, job: QueryJob) -> Message:
        def progress(stage, done, total):
            if job.cancel.is_set():
                raise Cancelled("cancelled")
            self._reply(job, Message("progress", job.request_id, {"stage": stage, "done": done, "total": total}))

        try:
            payload, arrays = self._run(job, progress)
            return Message(job.reply, job.request_id, payload, arrays)
        except Cancelled:
            return error_message(job.request_id, "cancelled", "the query was cancelled; nothing was kept")
        except ModelError as error:
            return error_message(job.request_id, "model", str(error))
        except (SceneError, IndexError) as error:  # e.g. a frame index past the scene's end, an unreadable scan
            return error_message(job.request_id, "bad-query" if job.reply == "result" else "bad-scan", str(error))
        except Exception as error:  # noqa: BLE001 - one failed query must not take the worker down
            log.exception("query %s failed", job.request_id)
            return error_message(job.request_id, "internal", f"{type(error).__name__}: {error}")

    def _reply(self, job: QueryJob, message: Message) -> None:
        self.outbox.put((job.route, message))
