"""Drawing results on photos, kept apart from inference: every function returns a new image."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import cv2
import numpy as np

from vision_backend.detections import Detections

PALETTE = [(37, 99, 235), (220, 38, 38), (22, 163, 74), (234, 88, 12), (147, 51, 234), (8, 145, 178),
           (202, 138, 4), (219, 39, 119), (71, 85, 105), (101, 163, 13)]


def colour(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def _thickness(image: np.ndarray) -> int:
    return max(1, round(max(image.shape[:2]) / 400))


FONT = cv2.FONT_HERSHEY_SIMPLEX
Rect = tuple[int, int, int, int]
"""x1, y1, x2, y2 in pixels, the end exclusive."""


def _text_style(image: np.ndarray) -> tuple[float, int]:
    """Font scale and stroke width for captions on ``image`` (they grow with the photo, as its boxes do)."""
    thick = _thickness(image)
    return max(0.4, thick * 0.45), max(1, thick // 2)


def caption_size(text: str, scale: float, weight: int) -> tuple[int, int]:
    """Width and height of a caption's filled background."""
    (width, height), base = cv2.getTextSize(text, FONT, scale, weight)
    return width + 4, height + base + 2


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_caption(shape: tuple[int, ...], box: np.ndarray, size: tuple[int, int], taken: list[Rect]) -> Rect | None:
    """Where a box's caption of ``size`` covers none of the ``taken`` rectangles: above the box, else
    below it, else inside its top edge (each also tried flush with the box's right side), moved into
    the image; None when every spot is taken. A rectangle found is added to ``taken``."""
    height, width = shape[:2]
    w, h = size
    x1, y1, x2, y2 = (int(round(v)) for v in np.nan_to_num(np.asarray(box, np.float64)).clip(0, max(height, width)))
    for x, y in ((x1, y1 - h), (x1, y2 + 1), (x1, y1 + 1), (x2 - w, y1 - h), (x2 - w, y2 + 1), (x2 - w, y1 + 1)):
        x = min(max(0, x), max(0, width - w))
        y = min(max(0, y), max(0, height - h))
        candidate = (x, y, x + w, y + h)
        if not any(_overlaps(candidate, other) for other in taken):
            taken.append(candidate)
            return candidate
    return None


def caption_texts(detections: Detections, show_scores: bool = True, show_labels: bool = False,
                  captions: list[str] | None = None) -> list[str]:
    """The caption of each box: its track's id (``#7``) where a tracker gave one, its own text (``captions``)
    or its class name, then its score."""
    texts = []
    ids = detections.tracker_id
    for i in range(len(detections)):
        parts = [f"#{ids[i]}"] if ids is not None and ids[i] >= 0 else []
        parts += [captions[i]] if captions else [detections.class_names[detections.labels[i]]] if show_labels else []
        if show_scores:
            parts.append(f"{detections.scores[i]:.2f}")
        texts.append(" ".join(parts))
    return texts


@dataclass(frozen=True)
class CaptionLayout:
    """What is written at each box (its caption, or its number in the legend) and where: ``rects[i]`` is
    the filled background of box ``i``'s text (None when it has none); ``legend`` lists (box, line)."""

    texts: list[str]
    rects: list[Rect | None]
    legend: list[tuple[int, str]]


def caption_layout(image: np.ndarray, detections: Detections, texts: list[str], legend: bool = False) -> CaptionLayout:
    """Each caption placed so that none covers another (:func:`place_caption`), the surest box first.

    A caption with no free spot becomes a small numbered tag on its box (placed the same way) and a
    legend line ("1 person 0.42") under the photo. With ``legend=False`` (a video frame keeps its size)
    it is written inside its box's top edge instead, where it may cover another.
    """
    scale, weight = _text_style(image)
    texts = list(texts)
    rects: list[Rect | None] = [None] * len(texts)
    taken: list[Rect] = []
    order = [int(i) for i in np.argsort(-detections.scores, kind="stable") if texts[i]]  # surest first
    for i in order:
        rects[i] = place_caption(image.shape, detections.boxes[i], caption_size(texts[i], scale, weight), taken)
    lines: list[tuple[int, str]] = []
    for i in order:
        if rects[i] is not None:
            continue
        if legend:
            tag = str(len(lines) + 1)
            rects[i] = place_caption(image.shape, detections.boxes[i], caption_size(tag, scale, weight), taken)
            x1, y1 = (int(v) for v in np.nan_to_num(detections.boxes[i][:2]))
            lines.append((i, f"{tag} {texts[i]}" + ("" if rects[i] else f" (the box at {x1}, {y1})")))
            texts[i] = tag
        else:
            w, h = caption_size(texts[i], scale, weight)
            x, y = (int(round(v)) for v in np.nan_to_num(detections.boxes[i][:2]).clip(0, max(image.shape[:2])))
            rects[i] = (x, y, x + w, y + h)
    return CaptionLayout(texts, rects, lines)


def _draw_caption(out: np.ndarray, text: str, rect: Rect, rgb: tuple[int, int, int]) -> None:
    scale, weight = _text_style(out)
    cv2.rectangle(out, rect[:2], (rect[2] - 1, rect[3] - 1), rgb, -1)
    height = cv2.getTextSize(text, FONT, scale, weight)[0][1]
    cv2.putText(out, text, (rect[0] + 2, rect[1] + height + 1), FONT, scale, (255, 255, 255), weight, cv2.LINE_AA)


def _with_legend(image: np.ndarray, lines: list[str], colours: list[tuple[int, int, int]]) -> np.ndarray:
    """The captions that found no room, on a white strip under the photo: each line after a swatch of
    its box's colour, as many to a row as the photo's width holds."""
    scale, weight = _text_style(image)
    row = caption_size("Ag", scale, weight)[1] + 4
    places, x, y = [], 4, 2
    for line in lines:
        width = row + 2 + caption_size(line, scale, weight)[0] + row // 2
        if x > 4 and x + width > image.shape[1]:
            x, y = 4, y + row
        places.append((x, y))
        x += width
    strip = np.full((y + row + 2, image.shape[1], 3), 255, np.uint8)
    for line, rgb, (x, y) in zip(lines, colours, places):
        cv2.rectangle(strip, (x, y + 3), (x + row - 6, y + row - 3), rgb, -1)
        height = cv2.getTextSize(line, FONT, scale, weight)[0][1]
        cv2.putText(strip, line, (x + row, y + (row + height) // 2), FONT, scale, (30, 30, 30), weight, cv2.LINE_AA)
    return np.vstack([image, strip])


def draw_detections(
    image: np.ndarray, detections: Detections, show_scores: bool = True, show_labels: bool = False,
    show_landmarks: bool = True, rgb: tuple[int, int, int] | None = None, captions: list[str] | None = None,
    legend: bool = False,
) -> np.ndarray:
    """Boxes (coloured per class unless ``rgb``), optional captions, scores and landmarks.

    Captions are placed so that none covers another (:func:`caption_layout`). With ``legend`` (pages),
    those that find no room are numbered and listed on a strip under the photo, which makes the image
    taller; without it (video frames keep their size) they are written inside their box.
    """
    out = np.ascontiguousarray(image.copy())
    thick = _thickness(out)
    colours = [rgb or colour(int(label)) for label in detections.labels]
    layout = caption_layout(out, detections, caption_texts(detections, show_scores, show_labels, captions), legend)
    height, width = out.shape[:2]
    for i in range(len(detections)):
        if not np.isfinite(detections.boxes[i]).all():
            continue
        x1, y1, x2, y2 = (int(round(v)) for v in detections.boxes[i].clip(-thick, max(height, width) + thick))
        cv2.rectangle(out, (x1, y1), (x2, y2), colours[i], thick)
        if show_landmarks and detections.landmarks is not None:
            for x, y in detections.landmarks[i]:
                if 0 <= x < width and 0 <= y < height:  # a degenerate box's landmarks can lie far outside
                    cv2.circle(out, (int(round(x)), int(round(y))), thick + 1, (250, 204, 21), -1)
    for i, rect in enumerate(layout.rects):  # after every box, so no box line crosses a caption
        if rect is not None:
            _draw_caption(out, layout.texts[i], rect, colours[i])
    if layout.legend:
        out = _with_legend(out, [line for _, line in layout.legend], [colours[i] for i, _ in layout.legend])
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


# ---- tracking: tracks, trails, counting lines, zones, counts ----------------------------------
LINE_RGB = (250, 204, 21)
"""Counting lines in a yellow no class colour uses."""


def draw_tracks(image: np.ndarray, tracked: Detections, trails: dict[int, np.ndarray] | None = None,
                show_scores: bool = True) -> np.ndarray:
    """Tracked boxes coloured by track (so two cars differ), captioned ``#id class score``, each with its trail
    in the same colour (see :func:`draw_trails`)."""
    out = draw_trails(image, trails or {})
    if not len(tracked):
        return out
    ids = tracked.tracker_id if tracked.tracker_id is not None else np.full(len(tracked), -1)
    by_track = Detections(tracked.boxes, tracked.scores, np.maximum(ids, 0), tracked.class_names,
                          tracked.landmarks, tracker_id=ids)
    return draw_detections(out, by_track, show_scores=show_scores, captions=tracked.names)


def draw_trails(image: np.ndarray, trails: dict[int, np.ndarray]) -> np.ndarray:
    """Each track's recent points (oldest first) as a line in its track's colour, thinning with age."""
    out = np.ascontiguousarray(image.copy())
    thick = _thickness(out) + 1
    for track, points in trails.items():
        points = np.asarray(points, np.float64).reshape(-1, 2)
        points = points[np.isfinite(points).all(1)].round().astype(np.int32)
        for k in range(1, len(points)):
            width = max(1, round(thick * k / len(points)))
            cv2.line(out, tuple(points[k - 1]), tuple(points[k]), colour(int(track)), width, cv2.LINE_AA)
    return out


def draw_counting_line(image: np.ndarray, line: tuple[float, float, float, float], counts_in: int,
                       counts_out: int, rgb: tuple[int, int, int] = LINE_RGB) -> np.ndarray:
    """A counting line with an arrow towards its ``in`` side (the right-hand side walking from its first end
    to its second) and its counts ("in 2 | out 1") at its left end."""
    out = np.ascontiguousarray(image.copy())
    thick = _thickness(out) + 1
    x1, y1, x2, y2 = (float(v) for v in line)
    cv2.line(out, (round(x1), round(y1)), (round(x2), round(y2)), rgb, thick, cv2.LINE_AA)
    length = max(1e-6, float(np.hypot(x2 - x1, y2 - y1)))
    normal = np.array([-(y2 - y1), x2 - x1]) / length  # the in side, on a screen whose y points down
    middle = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    tip = middle + normal * 12 * thick
    cv2.arrowedLine(out, tuple(middle.round().astype(int)), tuple(tip.round().astype(int)), rgb, thick,
                    cv2.LINE_AA, tipLength=0.4)
    text = f"in {counts_in} | out {counts_out}"
    size = caption_size(text, *_text_style(out))
    x = int(np.clip(min(x1, x2) if x1 != x2 else x1, 0, max(0, out.shape[1] - size[0])))
    y = int(np.clip((y1 if x1 <= x2 else y2) - size[1] - thick, 0, max(0, out.shape[0] - size[1])))
    _draw_caption(out, text, (x, y, x + size[0], y + size[1]), (120, 90, 0))
    return out


def draw_zone(image: np.ndarray, polygon: np.ndarray, text: str = "", rgb: tuple[int, int, int] = PALETTE[5],
              opacity: float = 0.2) -> np.ndarray:
    """A zone tinted and outlined, with its text (its occupancy) at its top-left corner."""
    out = np.ascontiguousarray(image.copy())
    corners = np.asarray(polygon, np.float64).reshape(-1, 2).round().astype(np.int32)
    tinted = out.copy()
    cv2.fillPoly(tinted, [corners], rgb)
    out = cv2.addWeighted(tinted, opacity, out, 1 - opacity, 0)
    cv2.polylines(out, [corners], True, rgb, _thickness(out) + 1, cv2.LINE_AA)
    if text:
        size = caption_size(text, *_text_style(out))
        x, y = corners[np.argmin(corners.sum(1))]
        x = int(np.clip(x, 0, max(0, out.shape[1] - size[0])))
        y = int(np.clip(y, 0, max(0, out.shape[0] - size[1])))
        _draw_caption(out, text, (x, y, x + size[0], y + size[1]), rgb)
    return out


def draw_panel(image: np.ndarray, lines: list[str], corner: str = "top_right") -> np.ndarray:
    """Lines of text (counts, rates) on a dark band in a corner (``top_left`` or ``top_right``)."""
    out = np.ascontiguousarray(image.copy())
    if not lines:
        return out
    scale, weight = _text_style(out)
    sizes = [caption_size(line, scale, weight) for line in lines]
    width, row = max(w for w, _ in sizes) + 8, max(h for _, h in sizes) + 2
    x0 = 4 if corner == "top_left" else max(0, out.shape[1] - width - 4)
    y1 = min(out.shape[0], 4 + row * len(lines) + 4)
    x1 = min(out.shape[1], x0 + width)
    out[4:y1, x0:x1] = (out[4:y1, x0:x1] * 0.35).astype(np.uint8)
    for k, line in enumerate(lines):
        height = cv2.getTextSize(line, FONT, scale, weight)[0][1]
        cv2.putText(out, line, (x0 + 4, 6 + row * k + height + 1), FONT, scale, (255, 255, 255), weight, cv2.LINE_AA)
    return out


# ---- your own objects: boxes drawn, R-CNN's steps, a detector's mistakes ----------------------------
ROLE_RGB = {"positive": (22, 163, 74), "negative": (220, 38, 38), "easy negative": (148, 163, 184)}
"""R-CNN's training regions by role: positives green, near misses (IoU 0.1-0.5) red, the rest grey."""
MISS_RGB, FALSE_ALARM_RGB, HIT_RGB = (220, 38, 38), (234, 88, 12), (22, 163, 74)


def draw_labelled(image: np.ndarray, boxes: np.ndarray, labels: list[str] | tuple[str, ...],
                  classes: list[str] | tuple[str, ...]) -> np.ndarray:
    """A person's boxes on their photo, each in its class's colour (the class's place in ``classes``) and named."""
    order = list(dict.fromkeys([*classes, *labels]))
    drawn = Detections(np.asarray(boxes, np.float64).reshape(-1, 4), np.ones(len(labels)),
                       [order.index(label) for label in labels], tuple(order))
    return draw_detections(image, drawn, show_scores=False, show_labels=True, legend=True)


def draw_regions(image: np.ndarray, boxes: np.ndarray, roles: np.ndarray) -> np.ndarray:
    """Regions coloured by their role in training (:data:`ROLE_RGB`), easy negatives first so positives stay on top."""
    out, roles = image, np.asarray(roles, dtype=object)
    for role in ("easy negative", "negative", "positive"):
        out = draw_boxes(out, np.asarray(boxes).reshape(-1, 4)[roles == role], ROLE_RGB[role],
                         max(1, _thickness(image) // (2 if role == "easy negative" else 1)))
    return out


def draw_moves(image: np.ndarray, sources: np.ndarray, targets: np.ndarray,
               rgb: tuple[int, int, int] = PALETTE[0]) -> np.ndarray:
    """Box regression: each box where it started (thin, grey), where the regression moved it (``rgb``), and an arrow
    from the one's centre to the other's."""
    thick = _thickness(image)
    out = draw_boxes(image, sources, ROLE_RGB["easy negative"], max(1, thick // 2))
    out = draw_boxes(out, targets, rgb, thick + 1)
    for source, target in zip(np.asarray(sources).reshape(-1, 4), np.asarray(targets).reshape(-1, 4)):
        start = ((source[:2] + source[2:]) / 2).round().astype(int)
        end = ((target[:2] + target[2:]) / 2).round().astype(int)
        if np.abs(end - start).max() >= 2:
            cv2.arrowedLine(out, tuple(int(v) for v in start), tuple(int(v) for v in end), rgb, thick, cv2.LINE_AA,
                            tipLength=0.3)
    return out


def draw_mistakes(image: np.ndarray, found: Detections, misses: list, false_alarms: list) -> np.ndarray:
    """What a detector got right and wrong on one photo: its boxes (green, with scores), the true boxes it missed
    (red, "missed") and its false alarms (orange, with what each is: a duplicate, the wrong class, a loose box...)."""
    out = draw_detections(image, found, show_labels=True, rgb=HIT_RGB, legend=False)
    if misses:
        missed = Detections(np.stack([m.box for m in misses]), np.ones(len(misses)), np.zeros(len(misses)),
                            ("missed",))
        out = draw_detections(out, missed, show_scores=False, rgb=MISS_RGB,
                              captions=[f"missed {m.label}" for m in misses])
    if false_alarms:
        wrong = Detections(np.stack([f.box for f in false_alarms]), [f.score for f in false_alarms],
                           np.zeros(len(false_alarms)), ("false alarm",))
        out = draw_detections(out, wrong, rgb=FALSE_ALARM_RGB, captions=[f"{f.label}: {f.kind}" for f in false_alarms])
    return out
