"""`scene-r1 serve`: the backend service (protocol in shared/protocol.py).

The parts: transport.py (the socket, CURVE/ZAP), dispatch.py (decode, validate, a table from
message type to handler), validation.py (payloads against the protocol's limits), jobs.py (the
query threads and their outbox), cache.py (decoded scenes and their results memo, in one byte
budget). One thread owns the socket and answers at once (hello, health, scene.has, cancel,
uploads); queries run on the job threads, whose messages the socket thread sends.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from pathlib import Path

from ...shared.protocol import MAX_QUERY_CHARS, PROTOCOL_VERSION, QUERY_OPTIONS, Message
from ...shared.results import result_to_wire
from ...shared.scan import scan_to_wire
from ...shared.scene import SceneError
from ...shared.scene_wire import scene_from_wire
from ..pipeline.pipeline import Pipeline
from ..tuning import release_freed_memory
from .cache import SceneCache, memo_key
from .dispatch import Dispatcher
from .jobs import JobRunner, QueryJob
from .keys import is_loopback
from .scans import folder_fingerprint, fuse_scan, open_scan, scan_folder, triangle_cap
from .settings import ServerSettings
from .transport import Transport

log = logging.getLogger("scene_r1.service")
MAX_SCAN_KEYS = 256


def check_exposure(settings: ServerSettings) -> None:
    """Anything but loopback, bound or connected to, only with CURVE keys."""
    address, verb = (settings.broker, "connect to broker") if settings.broker else (settings.bind, "bind")
    if settings.curve_keys is None and not is_loopback(address):
        raise SceneError(
            f"refusing to {verb} {address} without CURVE keys: anyone who can reach it could use this GPU "
            "and read uploaded scans. Make keys with `scene-r1 keys DIR` and pass --curve-keys DIR, or use 127.0.0.1."
        )


class Server:
    def __init__(self, settings: ServerSettings = ServerSettings(), pipeline: Pipeline | None = None):
        check_exposure(settings)
        self.settings = settings
        self.name = settings.name or f"worker-{uuid.uuid4().hex[:6]}"
        self._pipeline = pipeline
        self._pipeline_lock = threading.Lock()
        self.cache = SceneCache(settings.cache_bytes)
        self._scan_keys: dict[str, str] = {}  # folder fingerprint -> content hash of the scans opened
        self.runner = JobRunner(self._run, settings.jobs, idle=self._warm_step, quiet=release_freed_memory)
        self.dispatcher = Dispatcher(
            {
                "hello": self._hello,
                "health": self._health,
                "scene.has": self._scene_has,
                "scene.upload": self._scene_upload,
                "query": self._query,
                "cancel": self._cancel,
                "scan.open": self._scan_open,
            },
            settings.max_message_bytes,
            {"max_frames": settings.max_frames},
        )
        self.started = time.monotonic()
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.endpoint = settings.bind  # the bound address (with the real port when bound to :*)
        self.transport: Transport | None = None

    def pipeline(self) -> Pipeline:
        """The pipeline, loaded on first use (in a job thread)."""
        with self._pipeline_lock:
            if self._pipeline is None:
                self._pipeline = Pipeline(self.settings.pipeline)
            if self.cache.work is None:
                self.cache.work = self._pipeline.cache
                self._pipeline.cache.max_bytes = min(self._pipeline.cache.max_bytes, self.settings.cache_bytes)
            return self._pipeline

    def _warm_step(self) -> bool:
        """Query-independent work while no query waits (pipeline/warming.py); none before a first
        query, and none for a scene this server has dropped."""
        pipeline = self._pipeline
        if pipeline is None:
            return False
        held = self.cache.keys()
        if pipeline.warmer.key and pipeline.warmer.key not in held:
            pipeline.warmer.forget(pipeline.warmer.key)
        return pipeline.warm_step()

    def _warm_pending(self) -> int:
        return 0 if self._pipeline is None else self._pipeline.warmer.pending

    # ---- the socket thread -----------------------------------------------------------------------
    def serve(self) -> None:
        """Run until stop() (or KeyboardInterrupt)."""
        settings = self.settings
        self.transport = transport = Transport(
            settings.bind, settings.broker, settings.curve_keys, settings.max_message_bytes
        )
        self.endpoint = transport.endpoint
        self.runner.start()
        self.ready.set()
        last_keepalive = 0.0
        try:
            while not self.stop_event.is_set():
                if transport.poll(20):
                    received = transport.receive()
                    if received is not None:
                        reply = self.dispatcher.handle(*received)
                        if reply is not None:
                            transport.send(received[0], reply)
                self._drain(transport)
                if time.monotonic() - last_keepalive >= settings.keepalive_s:
                    last_keepalive = time.monotonic()
                    for route, message in self.runner.keepalives():
                        transport.send(route, message)
                    if settings.broker:
                        transport.send([b""], Message("worker.heartbeat", payload=self._worker_state()))
        finally:
            self.runner.stop()
            transport.close()

    def _drain(self, transport: Transport) -> None:
        while True:
            try:
                route, message = self.runner.outbox.get_nowait()
            except queue.Empty:
                return
            transport.send(route, message)

    def stop(self) -> None:
        self.stop_event.set()

    def _worker_state(self) -> dict:
        busy, queued = self.runner.counts()
        return {"name": self.name, "scenes": self.cache.keys(), "busy": busy, "queued": queued}

    # ---- handlers (payloads already validated) ----------------------------------------------------
    def _hello(self, route: list, message: Message) -> Message:
        limits = {"max_frames": self.settings.max_frames, "max_message_bytes": self.settings.max_message_bytes}
        limits |= {"max_text_chars": MAX_QUERY_CHARS, "query_options": QUERY_OPTIONS}
        payload = {"protocol": PROTOCOL_VERSION, "server": "scene-r1", "name": self.name, "limits": limits}
        payload |= {"vlm": self.settings.pipeline.vlm, "tracker": self.settings.pipeline.tracker}
        return Message("hello", message.id, payload)

    def _health(self, route: list, message: Message) -> Message:
        uptime = round(time.monotonic() - self.started, 1)
        payload = self._worker_state() | {"ok": True, "uptime_s": uptime, "served": self.runner.served}
        payload["warming"] = self._warm_pending()  # key-frame views still to encode in the background
        return Message("health", message.id, payload | {"cache": self.cache.stats()})

    def _scene_has(self, route: list, message: Message) -> Message:
        key = message.payload["hash"]
        return Message("scene.has", message.id, {"hash": key, "have": self.cache.get(key) is not None})

    def _scene_upload(self, route: list, message: Message) -> Message:
        if self.transport is not None:  # the client hears at once that the upload arrived
            self.transport.send(route, Message("accepted", message.id, {"stage": "upload"}))
        scene = scene_from_wire(message.payload, message.arrays, max_frames=self.settings.max_frames)
        nbytes = sum(a.nbytes for a in message.arrays.values())
        self.cache.put(message.payload["hash"], scene, nbytes)
        return Message("scene.stored", message.id, {"hash": message.payload["hash"], "frames": len(scene)})

    def _query(self, route: list, message: Message) -> Message:
        payload = message.payload
        key = payload["scene"]
        if self.cache.get(key) is None:
            return Message(
                "error",
                message.id,
                {"code": "unknown-scene", "message": f"this server does not hold scene {key}: upload it first"},
            )
        job = QueryJob(route, message.id, key, payload["mode"], payload.get("text", ""), payload.get("options", {}))
        position = self.runner.submit(job)
        if position is None:
            return Message("accepted", message.id, {"queued": True})  # a retried request: already on its way
        return Message("accepted", message.id, {"position": position})

    def _scan_open(self, route: list, message: Message) -> Message:
        """A capture folder is checked here (one line back at once when it is not one); reading,
        hashing and fusing it run on a job thread like a query."""
        folder, scan_format = scan_folder(message.payload["path"], self.settings.scan_roots)
        options = {k: v for k, v in message.payload.items() if k != "path"} | {"format": scan_format}
        job = QueryJob(route, message.id, "", "scan.open", str(folder), options, reply="scan.opened")
        position = self.runner.submit(job)
        return Message("accepted", message.id, {"queued": True} if position is None else {"position": position})

    def _cancel(self, route: list, message: Message) -> Message:
        target = message.payload["request"]
        return Message("cancel", message.id, {"request": target, "found": self.runner.cancel(route, target)})

    # ---- a job thread --------------------------------------------------------------------------------
    def _run(self, job: QueryJob, progress) -> tuple[dict, dict]:
        if job.mode == "scan.open":
            return self._open_scan(job, progress)
        cached = self.cache.get(job.scene_key)
        if cached is None:
            raise SceneError(f"scene {job.scene_key} was dropped from the cache before the query ran; upload it again")
        memo = memo_key(job.mode, job.text, job.options)
        if not job.options.get("no_cache"):
            stored = self.cache.result(job.scene_key, memo)
            if stored is not None:  # the same question about the same scene: nothing to recompute
                return stored[0] | {"cached": True}, stored[1]
        pipeline, scene, options = self.pipeline(), cached.scene, job.options
        if job.mode == "ground":
            result = pipeline.ground(scene, job.text, every=options.get("every"), progress=progress, cancel=job.cancel)
        elif job.mode == "ask":
            result = pipeline.ask(scene, job.text, progress=progress, cancel=job.cancel)
        else:
            result = pipeline.lift(
                scene,
                options["frame"],
                options.get("box"),
                progress=progress,
                cancel=job.cancel,
                points=options.get("points") or None,
            )
        result.worker = self.name
        payload, arrays = result_to_wire(result)
        self.cache.put_result(job.scene_key, memo, payload, arrays)
        return payload, arrays

    def _open_scan(self, job: QueryJob, progress) -> tuple[dict, dict]:
        options, folder = job.options, Path(job.text)
        fingerprint = folder_fingerprint(folder)
        key = self._scan_keys.get(fingerprint)
        held = None if key is None else self.cache.get(key)
        if held is not None:  # the same folder, unchanged since it was hashed: its frames are not read again
            scene = held.scene
        else:
            scene, key, nbytes = open_scan(folder, options["format"], progress)
            self._scan_keys[fingerprint] = key
            while len(self._scan_keys) > MAX_SCAN_KEYS:
                self._scan_keys.pop(next(iter(self._scan_keys)))
            if self.cache.get(key) is None:  # else the same frames are held already (uploaded or opened)
                self.cache.put(key, scene, nbytes)
        cap = triangle_cap(options.get("max_triangles"), self.settings.max_message_bytes, len(scene))
        memo = memo_key("scan.open", "", {"voxel": options.get("voxel"), "max_triangles": cap})
        stored = None if options.get("no_cache") else self.cache.result(key, memo)
        if stored is not None:  # the same folder opened again: its mesh is not fused twice
            return stored[0] | {"cached": True}, stored[1]
        payload, arrays = scan_to_wire(fuse_scan(scene, key, options.get("voxel"), cap, progress))
        payload["worker"] = self.name
        self.cache.put_result(key, memo, payload, arrays)
        return payload, arrays
