"""Each request's payload checked against the protocol's one list of types, modes and limits
(shared/protocol.py), before a handler sees it. The server and the broker both use it."""

from __future__ import annotations

from collections.abc import Callable

from ...shared.protocol import MAX_NAME_CHARS, REQUESTS, ProtocolError, is_request_id, is_scene_hash
from ...shared.queries import check_query
from ...shared.scan import check_scan_request
from ...shared.scene_wire import check_scene_meta

MAX_SCENES_REPORTED = 10_000  # scene hashes in one worker heartbeat


def _hello(payload: dict, limits: dict) -> None:
    client = payload.get("client", "")
    if not isinstance(client, str) or len(client) > MAX_NAME_CHARS or set(payload) - {"client"}:
        raise ProtocolError("bad-payload", "hello takes at most {'client': a short name}")


def _health(payload: dict, limits: dict) -> None:
    if payload:
        raise ProtocolError("bad-payload", "health takes an empty payload")


def _scene_has(payload: dict, limits: dict) -> None:
    if not is_scene_hash(payload.get("hash")) or set(payload) - {"hash"}:
        raise ProtocolError("bad-payload", "scene.has takes {'hash': 32 lower-case hex digits}")


def _scene_upload(payload: dict, limits: dict) -> None:
    check_scene_meta(payload, limits.get("max_frames", 5000))


def _query(payload: dict, limits: dict) -> None:
    if set(payload) - {"scene", "mode", "text", "options"}:
        raise ProtocolError("bad-payload", "a query takes scene, mode, text and options")
    if not is_scene_hash(payload.get("scene")):
        raise ProtocolError("bad-payload", "a query names its scene by its hash: 32 lower-case hex digits")
    check_query(payload.get("mode"), payload.get("text", ""), payload.get("options", {}))


def _cancel(payload: dict, limits: dict) -> None:
    if not is_request_id(payload.get("request")) or set(payload) - {"request"}:
        raise ProtocolError("bad-payload", "cancel takes {'request': the id of the request to stop}")


CHECKS: dict[str, Callable[[dict, dict], None]] = {
    "hello": _hello,
    "health": _health,
    "scene.has": _scene_has,
    "scene.upload": _scene_upload,
    "query": _query,
    "cancel": _cancel,
    "scan.open": lambda payload, limits: check_scan_request(payload),
}
assert tuple(CHECKS) == REQUESTS


def validate_request(kind: str, payload: dict, limits: dict | None = None) -> None:
    """ProtocolError (unknown-type / bad-payload / bad-scene / too-large) unless the request is
    one this protocol carries."""
    check = CHECKS.get(kind)
    if check is None:
        raise ProtocolError("unknown-type", f"unknown message type {kind!r}; requests are {', '.join(REQUESTS)}")
    check(payload, limits or {})


def validate_heartbeat(payload: dict) -> tuple[str, set, int]:
    """A worker's heartbeat: (name, scene hashes, busy)."""
    name, scenes, busy = payload.get("name", ""), payload.get("scenes", []), payload.get("busy", 0)
    queued = payload.get("queued", 0)
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
        raise ProtocolError("bad-payload", "a heartbeat's name is a short string")
    if not isinstance(scenes, list) or len(scenes) > MAX_SCENES_REPORTED or not all(map(is_scene_hash, scenes)):
        raise ProtocolError("bad-payload", "a heartbeat's scenes are a list of scene hashes")
    for value in (busy, queued):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 20:
            raise ProtocolError("bad-payload", "a heartbeat's busy and queued are small non-negative integers")
    return name, set(scenes), busy + queued
