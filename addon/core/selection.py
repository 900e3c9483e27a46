"""Which of the scene's own objects a box, a click or a result's 2D masks select.

A capture of a Blender scene knows, for every pixel, which object it shows (an object-index map:
0 = nothing, k = names[k - 1]). A box drawn over the camera's view therefore selects objects
directly: the one whose visible pixels the box holds best (mask IoU of the box and the object's
visible pixels, and most of the object inside the box). A find query's per-frame masks vote the
same way over all frames. Parts that form one thing (a parent and its children) are grouped.

When no object fits (one scanned mesh of many things), the caller falls back to the backend's
lifted points: `Choice.objects` is empty and `Choice.reason` says why in words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

MIN_CONTAINED = 0.5  # share of an object's visible pixels that must lie inside the box / mask
MIN_IOU = 0.2  # box-vs-visible-pixels IoU below which nothing is chosen
MIN_SHARE = 0.25  # share of a mask's object pixels an object needs to be selected by a find
GROUP_CONTAINED = 0.8  # a relative of the chosen object joins it when this much of it is inside


@dataclass
class Choice:
    """Objects chosen (best first), each one's score, and why nothing was chosen (empty if something was)."""

    objects: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    empty: bool = False  # the box, click or mask holds only empty background: there is nothing to lift either


def plain_words(text) -> str:
    """A backend message with numpy reprs made readable: `[np.int64(0), np.float32(1.5)]` -> `[0, 1.5]`."""
    return re.sub(r"np\.\w+\(([^()]*)\)", r"\1", str(text))


def _check_map(index_map) -> np.ndarray:
    index_map = np.asarray(index_map)
    if index_map.ndim != 2 or index_map.dtype.kind not in "iu":
        raise ValueError(f"an object-index map is a 2D integer image, got {index_map.dtype} {index_map.shape}")
    return index_map


def box_window(box, size: tuple[int, int]) -> tuple[slice, slice]:
    """The pixels whose centres lie inside an edge-coordinate box [x1, y1, x2, y2], clipped."""
    width, height = size
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(np.isfinite([x1, y1, x2, y2])) or x2 <= x1 or y2 <= y1:
        raise ValueError(f"a box is [x1, y1, x2, y2] with x1 < x2 and y1 < y2, got {list(box)}")
    columns = slice(int(np.clip(np.ceil(x1 - 0.5), 0, width)), int(np.clip(np.ceil(x2 - 0.5), 0, width)))
    rows = slice(int(np.clip(np.ceil(y1 - 0.5), 0, height)), int(np.clip(np.ceil(y2 - 0.5), 0, height)))
    return rows, columns


def objects_in_box(index_map, names: list[str], box, groups: dict[str, str] | None = None) -> Choice:
    """The object (or the thing of several parts: one group) a box was drawn around, from one frame's
    object-index map: the candidate whose visible pixels best match the box (IoU), among single
    objects with most of their visible pixels inside and groups of such objects."""
    index_map = _check_map(index_map)
    rows, columns = box_window(box, (index_map.shape[1], index_map.shape[0]))
    inside = np.bincount(index_map[rows, columns].ravel(), minlength=len(names) + 1)
    visible = np.bincount(index_map.ravel(), minlength=len(names) + 1)
    area = max((rows.stop - rows.start) * (columns.stop - columns.start), 1)
    if inside[1:].sum() == 0:
        return Choice(reason="the box covers no object: only empty background is inside it", empty=True)
    contained = {names[n - 1]: (int(inside[n]), int(visible[n])) for n in np.flatnonzero(inside[1:]) + 1}
    candidates = {(name,): pixels for name, pixels in contained.items() if pixels[0] >= MIN_CONTAINED * pixels[1]}
    for key in set((groups or {}).values()):
        members = [n for n, (i, v) in contained.items() if groups.get(n) == key and i >= GROUP_CONTAINED * v]
        if len(members) > 1:
            root_first = sorted(members, key=lambda n: (n != key, -contained[n][0], n))
            candidates[tuple(root_first)] = tuple(map(sum, zip(*(contained[n] for n in members))))
    scores = {parts: pixels[0] / (pixels[1] + area - pixels[0]) for parts, pixels in candidates.items()}
    best = max(scores, key=lambda parts: (scores[parts], -len(parts)), default=None)
    single = {parts[0]: float(score) for parts, score in scores.items() if len(parts) == 1}
    if best is None or scores[best] < MIN_IOU:
        return Choice(
            scores=single,
            reason="the box does not frame one object: it holds a small part of a larger surface"
            " (a scanned mesh of many things needs the backend's 3D mask)",
        )
    return Choice(list(best), single | {best[0]: float(scores[best])})


def object_at(index_map, names: list[str], pixel: tuple[int, int]) -> str | None:
    """The object a click landed on (None over empty background)."""
    index_map = _check_map(index_map)
    column, row = pixel
    height, width = index_map.shape
    if not (0 <= column < width and 0 <= row < height):
        raise ValueError(f"a click at pixel ({column}, {row}) is outside the {width}x{height} camera view")
    number = int(index_map[row, column])
    return names[number - 1] if number else None


def click_pixel(box) -> tuple[int, int]:
    """The pixel a click stands for: the centre of the small box a click is stored as (edge coordinates)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return int(np.floor((x1 + x2) / 2)), int(np.floor((y1 + y2) / 2))


def object_clicked(index_map, names: list[str], box) -> Choice:
    """A click over the camera view (stored as a small box around its pixel) -> the object under it."""
    name = object_at(index_map, names, click_pixel(box))
    if name is None:
        return Choice(reason="the click landed on empty background: there is no object under it", empty=True)
    return Choice([name], {name: 1.0})


def objects_for_ids(ids, names: list[str]) -> Choice:
    """A candidate answer (ids of the capture's object-index maps: k = names[k - 1]) -> exactly those objects."""
    objects = []
    for identifier in ids:
        if not isinstance(identifier, int) or isinstance(identifier, bool) or not 0 < identifier <= len(names):
            raise ValueError(f"the answer names object id {identifier!r}; the capture has ids 1..{len(names)}")
        if names[identifier - 1] not in objects:
            objects.append(names[identifier - 1])
    if not objects:
        return Choice(reason="the model's answer named no object in the scene")
    return Choice(objects, dict.fromkeys(objects, 1.0))


def chosen_ids(result) -> list[int] | None:
    """The ids a candidate-grounding result chose among the capture's own objects (None: not that kind)."""
    stage = result.stages.get("choose")
    if not isinstance(stage, dict) or stage.get("source") != "capture" or "ids" not in stage:
        return None
    return [int(i) for i in stage["ids"]]


def objects_in_masks(index_maps, names: list[str], masks: dict[int, np.ndarray], groups=None) -> Choice:
    """The objects a find query's per-frame 2D masks cover, voted over frames: each masked pixel on
    an object votes for it; an object is chosen when it takes at least MIN_SHARE of the votes and at
    least MIN_CONTAINED of its visible pixels (summed over the masked frames) are masked."""
    votes = np.zeros(len(names) + 1, np.int64)
    visible = np.zeros(len(names) + 1, np.int64)
    for frame, mask in sorted(masks.items()):
        if not 0 <= frame < len(index_maps):
            raise ValueError(f"a mask names frame {frame}; the capture has frames 0..{len(index_maps) - 1}")
        index_map, mask = _check_map(index_maps[frame]), np.asarray(mask, bool)
        if mask.shape != index_map.shape:
            raise ValueError(
                f"frame {frame}'s mask is {mask.shape[::-1]} pixels; the capture is {index_map.shape[::-1]}"
            )
        votes += np.bincount(index_map[mask].ravel(), minlength=len(names) + 1)
        visible += np.bincount(index_map.ravel(), minlength=len(names) + 1)
    if votes.sum() == 0:
        return Choice(reason="the model's mask is empty on every frame")
    if votes[1:].sum() == 0:
        return Choice(reason="the model's mask covers no object, only empty background")
    share = votes[1:] / votes[1:].sum()
    contained = votes[1:] / np.maximum(visible[1:], 1)
    scores = {names[i]: float(share[i]) for i in np.flatnonzero(votes[1:])}
    chosen = [i for i in np.argsort(-share, kind="stable") if share[i] >= MIN_SHARE and contained[i] >= MIN_CONTAINED]
    if not chosen:
        return Choice(scores=scores, reason="the model's mask covers only small parts of objects, none of them whole")
    everything = {names[i]: float(contained[i]) for i in np.flatnonzero(votes[1:])}
    objects = []
    for number in chosen:
        objects += [n for n in _with_relatives(names[number], everything, groups) if n not in objects]
    return Choice(objects, scores)


def _with_relatives(best: str, contained: dict[str, float], groups: dict[str, str] | None) -> list[str]:
    """The chosen object, and the objects of its group (same parent tree) that lie inside too."""
    if not groups or best not in groups:
        return [best]
    family = [n for n, c in contained.items() if n != best and groups.get(n) == groups[best] and c >= GROUP_CONTAINED]
    return [best, *sorted(family)]


def decode_rle(rle: dict) -> np.ndarray:
    """A COCO RLE (pycocotools' compressed text form, as results carry per-frame masks) -> bool HxW.
    numpy only, as in Blender's Python."""
    try:
        height, width = (int(v) for v in rle["size"])
        text = rle["counts"]
        data = text.encode("ascii") if isinstance(text, str) else bytes(text)
    except (KeyError, TypeError, ValueError, UnicodeEncodeError) as error:
        raise ValueError(f"a mask is not a COCO RLE {{'size': [h, w], 'counts': str}}: {error}") from None
    counts, position = [], 0
    while position < len(data):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(data):
                raise ValueError("a mask's RLE counts end in the middle of a number")
            chunk = data[position] - 48
            value |= (chunk & 0x1F) << (5 * shift)
            more = bool(chunk & 0x20)
            position, shift = position + 1, shift + 1
            if not more and chunk & 0x10:
                value |= -1 << (5 * shift)
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    runs = np.asarray(counts, np.int64)
    if (runs < 0).any() or runs.sum() != height * width:
        raise ValueError(f"a mask's RLE runs add up to {int(runs.sum())} pixels, not {height}x{width}")
    flat = np.repeat(np.arange(len(runs)) % 2 == 1, runs)
    return flat.reshape(width, height).T  # column-major, as COCO stores masks


def objects_for_result(result, index_maps, names: list[str], groups: dict[str, str] | None = None) -> Choice:
    """The scene's objects a find (or box) result names: each instance's per-frame masks vote
    against the capture's object-index maps; an instance without masks votes with its key-frame box."""
    ids = chosen_ids(result)
    if ids is not None:  # the model chose among the capture's own objects: exactly those
        return objects_for_ids(ids, names)
    if not result.instances:
        return Choice(reason=no_instance_reason(result))
    objects, scores, reasons = [], {}, []
    for instance in result.instances:
        masks = {int(frame): decode_rle(rle) for frame, rle in instance.masks_2d.items()}
        if masks:
            choice = objects_in_masks(index_maps, names, masks, groups)
        elif len(instance.box_2d) == 4 and result.key_frame is not None and 0 <= result.key_frame < len(index_maps):
            choice = objects_in_box(index_maps[result.key_frame], names, instance.box_2d, groups)
            if choice.empty:
                choice.reason = "the model's box covers no object that has depth (only empty background)"
        else:
            choice = Choice(reason=plain_words(instance.error) or "the model did not answer in the expected form")
        objects += [name for name in choice.objects if name not in objects]
        scores.update({k: v for k, v in choice.scores.items() if k in choice.objects})
        if choice.reason:
            reasons.append(choice.reason)
    return Choice(objects, scores, "" if objects else "; ".join(dict.fromkeys(reasons)))


def no_instance_reason(result) -> str:
    """Why a find returned nothing at all, in words."""
    for stage in result.stages.values():
        if isinstance(stage, dict) and (stage.get("error") or stage.get("well_formed") is False):
            return "the model did not answer in the expected form"
    return "the model's answer named no object in the scene"
