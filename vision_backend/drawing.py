"""Drawing results on photos, kept apart from inference: every function returns a new image."""

from __future__ import annotations

import io
import zipfile

import cv2
import numpy as np

from vision_backend.detections import Detections

PALETTE = [(37, 99, 235), (220, 38, 38), (22, 163, 74), (234, 88, 12), (147, 51, 234), (8, 145, 178),
           (202, 138, 4), (219, 39, 119), (71, 85, 105), (101, 163, 13)]


def colour(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def _thickness(image: np.ndarray) -> int:
    return max(1, round(max(image.shape[:2]) / 400))


def draw_detections(
    image: np.ndarray, detections: Detections, show_scores: bool = True, show_labels: bool = False,
    show_landmarks: bool = True, rgb: tuple[int, int, int] | None = None, captions: list[str] | None = None,
) -> np.ndarray:
    """Boxes (coloured per class unless ``rgb``), optional captions, scores and landmarks."""
    out = np.ascontiguousarray(image.copy())
    thick = _thickness(out)
    scale = max(0.4, thick * 0.45)
    for i in range(len(detections)):
        x1, y1, x2, y2 = (int(round(v)) for v in detections.boxes[i])
        c = rgb or colour(int(detections.labels[i]))
        cv2.rectangle(out, (x1, y1), (x2, y2), c, thick)
        parts = []
        if captions:
            parts.append(captions[i])
        elif show_labels:
            parts.append(detections.class_names[detections.labels[i]])
        if show_scores:
            parts.append(f"{detections.scores[i]:.2f}")
        if parts:
            text = " ".join(parts)
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, thick // 2))
            top = max(0, y1 - th - base - 2)
            cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + base + 2), c, -1)
            cv2.putText(out, text, (x1 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                        max(1, thick // 2), cv2.LINE_AA)
        if show_landmarks and detections.landmarks is not None:
            for x, y in detections.landmarks[i]:
                cv2.circle(out, (int(round(x)), int(round(y))), thick + 1, (250, 204, 21), -1)
    return out


def draw_boxes(image: np.ndarray, boxes: np.ndarray, rgb: tuple[int, int, int], thickness: int | None = None) -> np.ndarray:
    """Plain rectangles (proposals, candidate windows)."""
    out = np.ascontiguousarray(image.copy())
    thick = thickness or _thickness(out)
    for x1, y1, x2, y2 in np.asarray(boxes).reshape(-1, 4).round().astype(int):
        cv2.rectangle(out, (x1, y1), (x2, y2), rgb, thick)
    return out


def anonymise(image: np.ndarray, detections: Detections, mode: str = "blur", grow: float = 0.15) -> np.ndarray:
    """Blur or pixelate every box (grown a little), leaving every other pixel untouched."""
    out = image.copy()
    height, width = image.shape[:2]
    for x1, y1, x2, y2 in detections.boxes:
        dx, dy = (x2 - x1) * grow, (y2 - y1) * grow
        a, b = int(max(0, x1 - dx)), int(max(0, y1 - dy))
        c, d = int(min(width, x2 + dx)), int(min(height, y2 + dy))
        if c <= a or d <= b:
            continue
        patch = out[b:d, a:c]
        if mode == "pixelate":
            cells = max(1, min(patch.shape[:2]) // 10)
            small = cv2.resize(patch, (max(1, patch.shape[1] // cells), max(1, patch.shape[0] // cells)),
                               interpolation=cv2.INTER_AREA)
            out[b:d, a:c] = cv2.resize(small, (patch.shape[1], patch.shape[0]), interpolation=cv2.INTER_NEAREST)
        else:
            k = max(3, (min(patch.shape[:2]) // 3) | 1)
            out[b:d, a:c] = cv2.GaussianBlur(patch, (k, k), 0)
    return out


def crops(image: np.ndarray, detections: Detections, grow: float = 0.2) -> list[np.ndarray]:
    height, width = image.shape[:2]
    out = []
    for x1, y1, x2, y2 in detections.boxes:
        dx, dy = (x2 - x1) * grow, (y2 - y1) * grow
        a, b = int(max(0, x1 - dx)), int(max(0, y1 - dy))
        c, d = int(min(width, x2 + dx)), int(min(height, y2 + dy))
        if c > a and d > b:
            out.append(image[b:d, a:c].copy())
    return out


def zip_pngs(images: list[np.ndarray], stem: str = "face") -> bytes:
    from vision_backend.intake import encode_png

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, img in enumerate(images, 1):
            archive.writestr(f"{stem}_{i:02d}.png", encode_png(img))
    return buffer.getvalue()


def heat(values: np.ndarray) -> np.ndarray:
    """A 2-D array scaled to 0..255 and coloured (for integral images and feature maps)."""
    values = np.asarray(values, np.float64)
    low, high = float(values.min()), float(values.max())
    norm = np.zeros_like(values) if high <= low else (values - low) / (high - low)
    coloured = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    return cv2.cvtColor(coloured, cv2.COLOR_BGR2RGB)


def tint_rectangles(image: np.ndarray, rects: list[tuple]) -> np.ndarray:
    """Rectangles (x, y, w, h, weight) tinted white where the weight is positive, black where negative:
    how a Haar feature is drawn."""
    out = image.copy()
    for x, y, w, h, weight in rects:
        region = out[y : y + h, x : x + w]
        region[:] = (0.45 * region + 0.55 * (255 if weight > 0 else 0)).astype(np.uint8)
    return out


def draw_masks(image: np.ndarray, detections: Detections, opacity: float = 0.5, outline: bool = True) -> np.ndarray:
    """Instance masks blended over the photo in each class's colour, with a thin outline."""
    out = image.copy()
    if detections.masks is None or not len(detections):
        return out
    thick = _thickness(out)
    for i in range(len(detections)):
        mask = detections.masks[i]
        c = np.asarray(colour(int(detections.labels[i])), np.float32)
        out[mask] = (out[mask] * (1 - opacity) + c * opacity).round().astype(np.uint8)
        if outline:
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, contours, -1, tuple(int(v) for v in c), thick)
    return out


def draw_iou(image: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two boxes, their intersection filled: the picture behind intersection over union."""
    out = image.copy()
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    if x2 > x1 and y2 > y1:
        region = out[int(y1):int(y2), int(x1):int(x2)]
        region[:] = (region * 0.4 + np.array([250, 204, 21]) * 0.6).astype(np.uint8)
    out = draw_boxes(out, a, PALETTE[0])
    return draw_boxes(out, b, PALETTE[1])


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.45) -> np.ndarray:
    """A [0, 1] map (any resolution) stretched over the photo in the jet colours Grad-CAM papers use."""
    height, width = image.shape[:2]
    values = cv2.resize(np.asarray(heatmap, np.float32), (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    coloured = cv2.cvtColor(cv2.applyColorMap((values * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return (image * (1 - opacity) + coloured * opacity).round().astype(np.uint8)


def keep_only(image: np.ndarray, found: Detections, class_name: str = "person",
              background: tuple[int, int, int] | None = (255, 255, 255), blur: int = 0) -> np.ndarray:
    """Background removal from instance masks: keep the pixels of ``class_name`` instances only.

    ``background`` paints everything else a colour; ``blur`` > 0 blurs it instead (as video calls do).
    """
    if found.masks is None:
        raise ValueError("this detector gives boxes only; pick one with masks")
    wanted = [i for i, n in enumerate(found.names) if n == class_name]
    keep = np.any(found.masks[wanted], axis=0) if wanted else np.zeros(image.shape[:2], bool)
    if blur:
        k = blur | 1
        rest = cv2.GaussianBlur(image, (k, k), 0)
    else:
        rest = np.empty_like(image)
        rest[:] = background
    return np.where(keep[:, :, None], image, rest)
