"""Camera trajectories through a procedural room, as OpenCV camera-to-world poses."""

from __future__ import annotations

import numpy as np

from ....shared.camera import look_at
from .config import TRAJECTORIES
from .layout import Room


def orbit(room: Room, frames: int, rng: np.random.Generator) -> np.ndarray:
    """Circle inside the room at eye height, looking at the middle of the room."""
    centre = np.array([room.width / 2, room.depth / 2])
    radius_x, radius_y = room.width / 2 - 0.45, room.depth / 2 - 0.45
    start, sweep = rng.uniform(0, 2 * np.pi), rng.uniform(1.6, 2.0) * np.pi
    eye_height = rng.uniform(1.45, 1.7)
    poses = []
    for s in np.linspace(0.0, 1.0, frames):
        angle = start + sweep * s
        eye = np.array([centre[0] + radius_x * np.cos(angle), centre[1] + radius_y * np.sin(angle), eye_height])
        # Aim a little off-centre and swaying, so views are not all alike.
        target = np.array([centre[0] + 0.4 * np.sin(3 * angle), centre[1] + 0.4 * np.cos(2 * angle), 0.45])
        poses.append(look_at(eye, target))
    return np.stack(poses)


def walk(room: Room, frames: int, rng: np.random.Generator) -> np.ndarray:
    """Walk from one side of the room to the other, panning across it."""
    margin = 0.45
    side = rng.integers(2)
    a = (
        np.array([margin, rng.uniform(margin, room.depth - margin)])
        if side == 0
        else np.array([rng.uniform(margin, room.width - margin), margin])
    )
    b = np.array([room.width, room.depth]) - a
    pan_from, pan_to = (
        rng.uniform(0.2, 0.8, size=2) * [room.width, room.depth],
        rng.uniform(0.2, 0.8, size=2) * [room.width, room.depth],
    )
    eye_height = rng.uniform(1.45, 1.7)
    poses = []
    for s in np.linspace(0.0, 1.0, frames):
        s_smooth = 0.5 - 0.5 * np.cos(np.pi * s)  # ease in and out, as a person walks
        eye = np.append(a + (b - a) * s_smooth, eye_height + 0.03 * np.sin(12 * np.pi * s))
        target_xy = pan_from + (pan_to - pan_from) * s
        if np.linalg.norm(target_xy - eye[:2]) < 0.8:  # never look straight down
            target_xy = eye[:2] + (b - a) / np.linalg.norm(b - a)
        poses.append(look_at(eye, np.append(target_xy, 0.4)))
    return np.stack(poses)


def make_trajectory(kind: str, room: Room, frames: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "orbit":
        return orbit(room, frames, rng)
    if kind == "walk":
        return walk(room, frames, rng)
    raise ValueError(f"unknown trajectory {kind!r}; known: {', '.join(TRAJECTORIES)}")
