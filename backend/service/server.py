"""`scene-r1 serve`: the backend service (ZeroMQ ROUTER; protocol in shared/protocol.py).

One thread owns the socket and answers at once (hello, health, scene.has, cancel, uploads);
GPU work (queries) goes through a queue to `jobs` worker threads, which hand progress and
results back through an outbox the socket thread drains. A bounded LRU cache keeps uploaded
scenes decoded, with per-scene state (finished results), so a second query re-sends nothing.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from ...shared.defaults import DEFAULT_ADDRESS
from ...shared.protocol import (
    PROTOCOL_VERSION,
    Message,
    ProtocolError,
    check_lift_options,
    decode,
    encode,
    error_message,
    scene_from_wire,
)
from ...shared.results import result_to_wire
from ...shared.scene import SceneError
from ..models.loading import ModelError
from ..pipeline.pipeline import Cancelled, Pipeline
from ..pipeline.settings import PipelineSettings
from .cache import SceneCache
from .jobs import Job
from .keys import is_loopback


@dataclass(frozen=True)
class ServerSettings:
    bind: str = DEFAULT_ADDRESS
    curve_keys: Path | None = None  # folder from `scene-r1 keys`: server.key_secret, authorized_clients/
    broker: str | None = None  # connect to a broker's worker address instead of binding
    name: str = ""  # worker name in a broker's pool (default: host + a random suffix)
    jobs: int = 1  # queries run at once (GPU work); health/progress/cancel never wait for them
    max_message_bytes: int = 4 << 30
    max_frames: int = 5000
    cache_bytes: int = 8 << 30  # decoded scenes held (least recently used dropped first)
    keepalive_s: float = 1.0  # a running query's client hears from us at least this often
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)


class Server:
    def __init__(self, settings: ServerSettings = ServerSettings(), pipeline: Pipeline | None = None):
        if settings.broker is None and not is_loopback(settings.bind) and settings.curve_keys is None:
            raise SceneError(
                f"refusing to bind {settings.bind} without CURVE keys: anyone who can reach it could use this GPU "
                "and read uploaded scans. Make keys with `scene-r1 keys DIR` and pass --curve-keys DIR, or bind 127.0.0.1."
            )
        self.settings = settings
        self.name = settings.name or f"worker-{uuid.uuid4().hex[:6]}"
        self._pipeline = pipeline
        self._pipeline_lock = threading.Lock()
        self.cache = SceneCache(settings.cache_bytes)
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.running: dict[str, Job] = {}
        self.queued: dict[str, Job] = {}
        self.outbox: queue.Queue[tuple[list, Message]] = queue.Queue()
        self.started = time.monotonic()
        self.served = 0
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.endpoint = settings.bind  # the bound address (with the real port when bound to :*)

    # ---- the pipeline, loaded on first use in a worker thread ---------------------------------
    def pipeline(self) -> Pipeline:
        with self._pipeline_lock:
            if self._pipeline is None:
                self._pipeline = Pipeline(self.settings.pipeline)
            return self._pipeline

    # ---- socket thread ------------------------------------------------------------------------
    def serve(self) -> None:
        """Run until stop() (or KeyboardInterrupt)."""
        context = zmq.Context()
        auth = None
        socket = context.socket(zmq.DEALER if self.settings.broker else zmq.ROUTER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.MAXMSGSIZE, self.settings.max_message_bytes)
        if self.settings.curve_keys is not None:
            auth = self._curve(context, socket, Path(self.settings.curve_keys))
        if self.settings.broker:
            socket.connect(self.settings.broker)
        else:
            socket.bind(self.settings.bind)
            self.endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)
        workers = [
            threading.Thread(target=self._work, name=f"scene-r1-job-{i}", daemon=True)
            for i in range(self.settings.jobs)
        ]
        for worker in workers:
            worker.start()
        self.ready.set()
        last_keepalive = 0.0
        try:
            while not self.stop_event.is_set():
                if socket.poll(20):
                    self._receive(socket)
                while True:
                    try:
                        route, message = self.outbox.get_nowait()
                    except queue.Empty:
                        break
                    self._send(socket, route, message)
                now = time.monotonic()
                if now - last_keepalive >= self.settings.keepalive_s:
                    last_keepalive = now
                    for job in list(self.running.values()):
                        self._send(socket, job.route, Message("progress", job.request_id, {"keepalive": True}))
                    if self.settings.broker:
                        self._send(socket, [b""], Message("worker.heartbeat", payload=self._worker_state()))
        finally:
            for _ in workers:
                self.jobs.put(None)
            socket.close(linger=0)
            if auth is not None:
                auth.stop()
            context.term()

    def stop(self) -> None:
        self.stop_event.set()

    def _curve(self, context, socket, folder: Path):
        from zmq.auth.thread import ThreadAuthenticator

        try:
            public, secret = zmq.auth.load_certificate(folder / "server.key_secret")
        except (OSError, ValueError) as error:
            raise SceneError(f"cannot read the server's CURVE key {folder / 'server.key_secret'}: {error}") from None
        clients = folder / "authorized_clients"
        if not clients.is_dir() or not any(clients.glob("*.key")):
            raise SceneError(f"no authorized client keys in {clients}: every client would be refused")
        auth = ThreadAuthenticator(context)
        auth.start()
        auth.configure_curve(domain="*", location=str(clients))
        socket.curve_server = True
        socket.curve_publickey, socket.curve_secretkey = public, secret
        return auth

    def _worker_state(self) -> dict:
        return {"name": self.name, "scenes": self.cache.keys(), "busy": len(self.running), "queued": len(self.queued)}

    def _send(self, socket, route: list, message: Message) -> None:
        try:
            socket.send_multipart(list(route) + encode(message), copy=False)
        except zmq.ZMQError:
            pass  # the peer is gone; ROUTER drops unroutable messages, nothing to tell anyone

    def _receive(self, socket) -> None:
        frames = socket.recv_multipart(copy=False)
        if not frames:
            return
        # ROUTER: [identity, header, ...]; behind a broker: [client identity, header, ...].
        route, body = [frames[0]], frames[1:]
        request_id = ""
        try:
            message = decode(body, max_array_bytes=self.settings.max_message_bytes)
            request_id = message.id
            reply = self._handle(route, message)
        except ProtocolError as error:
            reply = error_message(request_id or "unknown", error.code, str(error))
        except SceneError as error:
            reply = error_message(request_id or "unknown", "bad-scene", str(error))
        except Exception as error:  # noqa: BLE001 - the server keeps serving whatever one message does
            reply = error_message(request_id or "unknown", "internal", f"{type(error).__name__}: {error}")
        if reply is not None:
            self._send(socket, route, reply)

    def _handle(self, route: list, message: Message) -> Message | None:
        kind, payload = message.type, message.payload
        if kind == "hello":
            return Message(
                "hello",
                message.id,
                {
                    "protocol": PROTOCOL_VERSION,
                    "server": "scene-r1",
                    "name": self.name,
                    "vlm": self.settings.pipeline.vlm,
                    "tracker": self.settings.pipeline.tracker,
                    "limits": {
                        "max_frames": self.settings.max_frames,
                        "max_message_bytes": self.settings.max_message_bytes,
                    },
                },
            )
        if kind == "health":
            return Message(
                "health",
                message.id,
                self._worker_state()
                | {"ok": True, "uptime_s": round(time.monotonic() - self.started, 1), "served": self.served},
            )
        if kind == "scene.has":
            key = payload.get("hash")
            if not isinstance(key, str):
                raise ProtocolError("bad-payload", "scene.has needs a string 'hash'")
            return Message("scene.has", message.id, {"hash": key, "have": self.cache.get(key) is not None})
        if kind == "scene.upload":
            scene = scene_from_wire(payload, message.arrays, max_frames=self.settings.max_frames)
            nbytes = sum(a.nbytes for a in message.arrays.values())
            self.cache.put(payload["hash"], scene, nbytes)
            return Message("scene.stored", message.id, {"hash": payload["hash"], "frames": len(scene)})
        if kind == "query":
            return self._enqueue(route, message)
        if kind == "cancel":
            target = payload.get("request")
            job = self.running.get(target) or self.queued.get(target)
            if job is not None:
                job.cancel.set()
            return Message("cancel", message.id, {"request": target, "found": job is not None})
        raise ProtocolError(
            "unknown-type",
            f"unknown message type {kind!r}; requests are hello, health, scene.has, scene.upload, query, cancel",
        )

    def _enqueue(self, route: list, message: Message) -> Message:
        payload = message.payload
        mode, key, text, options = (
            payload.get("mode"),
            payload.get("scene"),
            payload.get("text", ""),
            payload.get("options", {}),
        )
        if mode not in ("ground", "ask", "lift"):
            raise ProtocolError("bad-payload", f"query mode must be ground, ask or lift, got {mode!r}")
        if not isinstance(text, str) or len(text) > 2000 or not isinstance(options, dict):
            raise ProtocolError(
                "bad-payload", "a query needs 'text' (a string of at most 2000 characters) and 'options' (an object)"
            )
        if mode != "lift" and not text.strip():
            raise ProtocolError("bad-payload", f"a {mode} query needs text")
        if mode == "lift":
            check_lift_options(options)
        if not isinstance(key, str) or self.cache.get(key) is None:
            raise ProtocolError(
                "unknown-scene", f"this server does not hold scene {key!r}: upload it first (scene.upload)"
            )
        if message.id in self.running or message.id in self.queued:
            return Message("accepted", message.id, {"queued": True})  # a retried request: already on its way
        job = Job(route, message.id, key, mode, text, options)
        self.queued[job.request_id] = job
        self.jobs.put(job)
        return Message("accepted", message.id, {"position": self.jobs.qsize()})

    # ---- worker threads -----------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            self.queued.pop(job.request_id, None)
            if job.cancel.is_set():
                self.outbox.put(
                    (job.route, error_message(job.request_id, "cancelled", "the query was cancelled before it started"))
                )
                continue
            self.running[job.request_id] = job
            try:
                payload, arrays = self._run(job)
                self.outbox.put((job.route, Message("result", job.request_id, payload, arrays)))
            except Cancelled:
                self.outbox.put(
                    (job.route, error_message(job.request_id, "cancelled", "the query was cancelled; nothing was kept"))
                )
            except ModelError as error:
                self.outbox.put((job.route, error_message(job.request_id, "model", str(error))))
            except (SceneError, IndexError) as error:  # e.g. a frame index past the scene's end
                self.outbox.put((job.route, error_message(job.request_id, "bad-query", str(error))))
            except Exception as error:  # noqa: BLE001 - one failed query must not take the worker down
                self.outbox.put(
                    (job.route, error_message(job.request_id, "internal", f"{type(error).__name__}: {error}"))
                )
            finally:
                self.running.pop(job.request_id, None)
                self.served += 1

    def _run(self, job: Job) -> tuple[dict, dict]:
        cached = self.cache.get(job.scene_key)
        if cached is None:
            raise SceneError(f"scene {job.scene_key} was dropped from the cache before the query ran; upload it again")
        memo_key = (job.mode, job.text, repr(sorted(job.options.items())))
        if memo_key in cached.results:  # the same question about the same scene: nothing to recompute
            payload, arrays = cached.results[memo_key]
            return payload | {"cached": True}, arrays

        def progress(stage, done, total):
            if job.cancel.is_set():
                raise Cancelled("cancelled")
            self.outbox.put(
                (job.route, Message("progress", job.request_id, {"stage": stage, "done": done, "total": total}))
            )

        pipeline = self.pipeline()
        scene = cached.scene
        if job.mode == "ground":
            result = pipeline.ground(
                scene, job.text, every=job.options.get("every"), progress=progress, cancel=job.cancel
            )
        elif job.mode == "ask":
            result = pipeline.ask(scene, job.text, progress=progress, cancel=job.cancel)
        else:
            options = job.options
            points = options.get("points") or None
            result = pipeline.lift(
                scene, options.get("frame", 0), options.get("box"), progress=progress, cancel=job.cancel, points=points
            )
        result.worker = self.name
        payload, arrays = result_to_wire(result)
        cached.results[memo_key] = (payload, arrays)
        return payload, arrays
