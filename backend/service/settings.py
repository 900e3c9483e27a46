"""The service's typed settings, in a module light enough for the CLI to read defaults from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...shared.defaults import DEFAULT_ADDRESS
from ...shared.protocol import MAX_MESSAGE_BYTES
from ..pipeline.settings import PipelineSettings


@dataclass(frozen=True)
class ServerSettings:
    bind: str = DEFAULT_ADDRESS
    curve_keys: Path | None = None  # folder from `scene-r1 keys`: server.key_secret, authorized_clients/
    broker: str | None = None  # connect to a broker's worker address instead of binding
    name: str = ""  # worker name in a broker's pool (default: host + a random suffix)
    jobs: int = 1  # queries run at once (GPU work); health/progress/cancel never wait for them
    max_message_bytes: int = MAX_MESSAGE_BYTES  # decoded buffer bytes of one message, checked before allocation
    max_frames: int = 5000
    cache_bytes: int = 8 << 30  # decoded scenes and their results held (least recently used dropped first)
    keepalive_s: float = 1.0  # a running query's client hears from us at least this often
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
