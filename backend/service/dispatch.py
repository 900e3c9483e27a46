"""One message in, at most one reply out: decode, validate, then a table from message type to
handler. Whatever one message does, the caller gets a reply it can always send (an error with
a named code for anything a peer caused, `internal` and a log entry for the rest)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from ...shared.camera import CameraError
from ...shared.protocol import MAX_HEADER_BYTES, Message, ProtocolError, decode, error_message, safe_id
from ...shared.scene import SceneError
from .validation import validate_request

log = logging.getLogger("scene_r1.service")

Handler = Callable[[list, Message], "Message | None"]


class Dispatcher:
    def __init__(self, handlers: dict[str, Handler], max_message_bytes: int, limits: dict):
        self.handlers, self.max_message_bytes, self.limits = handlers, max_message_bytes, limits

    def handle(self, route: list, body: list) -> Message | None:
        """The reply to one request (frames after the routing envelope); never raises."""
        request_id = None
        try:
            message = decode(body, max_message_bytes=self.max_message_bytes)
            request_id = message.id
            validate_request(message.type, message.payload, self.limits)
            return self.handlers[message.type](route, message)
        except ProtocolError as error:
            return error_message(request_id or _peek_id(body), error.code, str(error))
        except (SceneError, CameraError) as error:  # e.g. an upload's focal length of 0
            return error_message(request_id or "unknown", "bad-scene", str(error))
        except MemoryError:
            log.error("out of memory handling request %s", request_id)
            return error_message(request_id or "unknown", "too-large", "the server ran out of memory for this message")
        except Exception as error:  # noqa: BLE001 - the server keeps serving whatever one message does
            log.exception("request %s failed", request_id)
            return error_message(request_id or "unknown", "internal", f"{type(error).__name__}: {error}")


def _peek_id(body: list) -> str:
    """The id of a request that failed to decode, when its header has a valid one: the client
    then hears why at once instead of at its timeout. Else "unknown"."""
    try:
        raw = body[0].bytes if hasattr(body[0], "bytes") else bytes(body[0])
        if len(raw) > MAX_HEADER_BYTES:
            return "unknown"
        header = json.loads(raw.decode("utf-8"), parse_constant=float)
        return safe_id(header.get("id") if isinstance(header, dict) else None)
    except Exception:  # noqa: BLE001 - any failure: decode() has said what is wrong
        return "unknown"
