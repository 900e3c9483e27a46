"""Which way is up in a scan: in its world (scan_up, for exports stood upright) and in its images
(upright_turns: a phone held in portrait stores sideways frames; the vision-language model is
shown them turned upright, and its boxes are turned back)."""

from __future__ import annotations

import numpy as np

SNAP_DEGREES = 20.0  # an estimated up within this of a world axis is taken as that axis


def scan_up(poses: np.ndarray) -> np.ndarray:
    """The scan's up direction in its world. People hold phones without roll, so one image axis of
    every camera stays level: image-right when held in landscape, image-down in portrait (the
    frames are stored in the sensor's landscape orientation, so a portrait capture's image-right
    points up or down). Up is the direction most perpendicular to the level axes (the least
    eigenvector of their scatter; the axis set that spreads more in a plane is the level one),
    signed like the cameras' image-up in landscape; in portrait, where image-right may point either
    way, the positive world axis it snaps to (ARKit worlds are y-up, ours z-up), else the side the
    cameras look away from (people point phones down at tables and floors more than up). When the
    cameras hardly turned, the mean image-up, made perpendicular to image-right, is used. Snapped to
    the nearest world axis within SNAP_DEGREES. On 7-Scenes' redkitchen this lands 2 degrees from the
    floor's normal; the mean image-up alone is 27 degrees off (the camera looks down at the table)."""
    poses = np.asarray(poses, np.float64)
    right, down = poses[:, :3, 0], poses[:, :3, 1]
    image_up = -down.mean(axis=0)
    right_values, right_vectors = np.linalg.eigh(right.T @ right / len(right))
    down_values, down_vectors = np.linalg.eigh(down.T @ down / len(down))
    if right_values[1] > 4 * max(right_values[0], 1e-12) and right_values[1] >= down_values[1]:
        up = right_vectors[:, 0]  # landscape: image-right level
    elif down_values[1] > 4 * max(down_values[0], 1e-12):
        up = down_vectors[:, 0]  # portrait: image-down level
        return _snapped(up, _portrait_sign(up, poses))
    else:
        level = right_vectors[:, 2]
        up = image_up - (image_up @ level) * level
    norm = np.linalg.norm(up)
    if norm < 1e-9:
        return np.array([0.0, 0.0, 1.0])
    up = up / norm * (1.0 if up @ image_up >= 0 else -1.0)
    return _snapped(up, 1.0)


def _portrait_sign(up: np.ndarray, poses: np.ndarray) -> float:
    """+1 or -1 for a portrait capture's up (see scan_up)."""
    axis = int(np.argmax(np.abs(up)))
    if np.degrees(np.arccos(min(1.0, abs(float(up[axis]))))) <= SNAP_DEGREES:
        return float(np.sign(up[axis]))  # towards the positive world axis
    looking = poses[:, :3, 2].mean(axis=0)
    return -1.0 if looking @ up > 0 else 1.0


def _snapped(up: np.ndarray, sign: float) -> np.ndarray:
    up = up / max(np.linalg.norm(up), 1e-12) * sign
    axis = np.zeros(3)
    axis[int(np.argmax(np.abs(up)))] = np.sign(up[int(np.argmax(np.abs(up)))])
    return axis if np.degrees(np.arccos(np.clip(up @ axis, -1, 1))) <= SNAP_DEGREES else up


def upright_turns(poses: np.ndarray) -> int:
    """Quarter turns counter-clockwise (np.rot90's k) that stand most frames upright: 0 for a
    landscape capture, 1 when the scan's up points to the images' right, 3 to their left, 2 down."""
    poses = np.asarray(poses, np.float64)
    up = scan_up(poses)
    in_camera = np.einsum("nji,j->ni", poses[:, :3, :3], up)  # the world's up in each camera's axes
    x, y = in_camera[:, 0], in_camera[:, 1]
    turns = np.where(np.abs(x) > np.abs(y), np.where(x > 0, 1, 3), np.where(y > 0, 2, 0))
    return int(np.bincount(turns, minlength=4).argmax())


def turn_image(image: np.ndarray, turns: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(image, turns)) if turns % 4 else image


def unturn_box(box, turns: int, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """A box drawn on the image turned `turns` times, in the pixels of the original image of
    `size` (width, height)."""
    width, height = size
    x1, y1, x2, y2 = box
    corners = [(x1, y1), (x2, y2)]
    turns %= 4
    if turns == 1:  # (x, y) -> (y, W - x) turned; back: (W - y', x')
        corners = [(width - y, x) for x, y in corners]
    elif turns == 2:
        corners = [(width - x, height - y) for x, y in corners]
    elif turns == 3:  # (x, y) -> (H - y, x) turned; back: (y', H - x')
        corners = [(y, height - x) for x, y in corners]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    return (float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys)))
