"""A query waiting for, or running on, the backend's worker thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Job:
    route: list  # routing envelope (client identity) to answer through
    request_id: str
    scene_key: str
    mode: str
    text: str
    options: dict
    cancel: threading.Event = field(default_factory=threading.Event)
