"""COCO's classes and result format: the 80 names, the official category ids, RLE masks, results JSON.

The 80 names are the contiguous classes every COCO detector here predicts (index 0 = person);
COCO's own category ids run 1..90 with gaps. Masks are written as COCO's uncompressed
run-length encoding, so the JSON loads in pycocotools and in annotation tools.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vision_backend.detections import Detections

COCO_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant",
    "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet",
    "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)
"""COCO's 80 detection classes in the models' output order (the ONNX Model Zoo's list)."""

# COCO's official category ids (1..90 with gaps) for the 80 contiguous classes the models predict
COCO_CATEGORY_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
                     31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
                     56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
                     85, 86, 87, 88, 89, 90)


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO's uncompressed RLE: run lengths in column-major order, starting with background."""
    flat = np.asarray(mask, bool).flatten(order="F")
    changes = np.flatnonzero(np.diff(np.r_[0, flat.astype(np.int8), 0]))
    counts = np.diff(np.r_[0, changes]).tolist()  # a change at index 0 gives an empty first background run
    if sum(counts) < flat.size:
        counts.append(int(flat.size - sum(counts)))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    height, width = rle["size"]
    values = np.zeros(height * width, bool)
    position, value = 0, False
    for run in rle["counts"]:
        values[position : position + run] = value
        position += run
        value = not value
    return values.reshape((height, width), order="F")


def to_coco(found: Detections, image_id: str = "photo") -> list[dict[str, Any]]:
    """COCO-style results: bbox as [x, y, width, height], COCO's category ids, RLE masks."""
    official = found.class_names == COCO_NAMES
    rows = []
    for i in range(len(found)):
        x1, y1, x2, y2 = (float(v) for v in found.boxes[i])
        row = {"image_id": image_id, "category_id": COCO_CATEGORY_IDS[found.labels[i]] if official else int(found.labels[i]) + 1,
               "category": found.class_names[found.labels[i]], "score": round(float(found.scores[i]), 4),
               "bbox": [round(x1, 1), round(y1, 1), round(x2 - x1, 1), round(y2 - y1, 1)]}
        if found.masks is not None:
            row["segmentation"] = rle_encode(found.masks[i])
            row["area"] = int(found.masks[i].sum())
        rows.append(row)
    return rows


