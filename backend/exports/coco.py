"""COCO instance annotations (what 2D labelling tools read) from per-frame masks: one image per
frame that shows an object (the frame's colour image is written beside the JSON), one annotation
per object and frame with its mask as compressed RLE, its box and area."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np


class CocoBuilder:
    def __init__(self, classes: list[str]):
        self.categories = [{"id": i, "name": name, "supercategory": "object"} for i, name in enumerate(classes, 1)]
        self.category_ids = {name: i for i, name in enumerate(classes, 1)}
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self._image_ids: dict[tuple[str, int], int] = {}

    def image_id(self, scan: str, frame: int, width: int, height: int, number: int | None = None) -> int:
        """The image of the scan's frame at index `frame`, named by the capture's own frame `number`
        (the file's number, what `--frame` takes; the index when not given)."""
        key = (scan, int(frame))
        number = int(frame if number is None else number)
        if key not in self._image_ids:
            self._image_ids[key] = len(self.images) + 1
            self.images.append(
                {
                    "id": self._image_ids[key],
                    "file_name": f"frames/{number:06d}.jpg",
                    "width": int(width),
                    "height": int(height),
                    "scan": scan,
                    "frame": number,
                    "frame_index": int(frame),
                }
            )
        return self._image_ids[key]

    def add_object(
        self, scan: str, color_size, label: str, score: float, object_id: int, masks_2d: dict, frame_numbers=None
    ) -> int:
        """One 3D object's per-frame masks (frame index -> COCO RLE at any resolution); returns annotations
        added. `frame_numbers[index]` is the capture's own number of each frame."""
        from pycocotools import mask as coco

        width, height = color_size
        added = 0
        for frame, rle in sorted(masks_2d.items()):
            mask = coco.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")})
            if mask.shape != (height, width):  # tracker masks may be at depth resolution
                mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
            if not mask.any():
                continue
            encoded = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
            self.annotations.append(
                {
                    "id": len(self.annotations) + 1,
                    "image_id": self.image_id(
                        scan, frame, width, height, None if frame_numbers is None else frame_numbers[int(frame)]
                    ),
                    "category_id": self.category_ids[label],
                    "segmentation": {
                        "size": [int(v) for v in encoded["size"]],
                        "counts": encoded["counts"].decode("ascii"),
                    },
                    "area": float(coco.area(encoded)),
                    "bbox": [float(v) for v in coco.toBbox(encoded)],
                    "iscrowd": 0,
                    "score": round(float(score), 4),
                    "object_id": int(object_id),
                }
            )
            added += 1
        return added

    def frames_of(self, scan: str) -> list[dict]:
        """The images of one scan (each with its "frame_index" and "file_name")."""
        return [image for image in self.images if image["scan"] == scan]

    def to_json(self) -> dict:
        return {
            "info": {"description": "Scene-R1 labels", "version": "1.0"},
            "licenses": [],
            "images": self.images,
            "annotations": self.annotations,
            "categories": self.categories,
        }

    def write(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json()), encoding="utf-8")
        return path


def merge_coco(documents: list[tuple[str, dict]], classes: list[str]) -> dict:
    """Several scans' COCO documents (same classes), each with the folder its file names are relative
    to, as one document whose ids are renumbered and whose file names are relative to the parent."""
    merged = CocoBuilder(classes).to_json()
    for folder, document in documents:
        image_offset, annotation_offset = len(merged["images"]), len(merged["annotations"])
        merged["images"] += [
            image | {"id": image["id"] + image_offset, "file_name": f"{folder}/{image['file_name']}"}
            for image in document["images"]
        ]
        merged["annotations"] += [
            a | {"id": a["id"] + annotation_offset, "image_id": a["image_id"] + image_offset}
            for a in document["annotations"]
        ]
    return merged
