"""Where did it look, for every classifier on every engine: saliency maps with or without gradients, and
how faithful each map is.

Grad-CAM (:mod:`~vision_backend.classification.gradcam`) needs the gradients of a Keras graph; the int8
TFLite and ONNX classifiers have none. The methods here need nothing but ``probabilities(photos) -> (N,
classes)``, so one code path explains a registered ImageNet classifier on any engine, a person's saved
transfer model, the flowers demo or a live camera's classes:

- **occlusion** (Zeiler & Fergus 2014): slide a patch over the photo; where hiding it lowers the class's
  probability most is where the evidence is;
- **RISE** (Petsiuk, Das & Saenko 2018): run the photo under hundreds of random smooth masks; each pixel's
  importance is how much higher the class scores when it is kept than when it is hidden.

Both run on a small working copy (224 px on its long side by default) and batch the masked copies through the
engine. **Deletion / insertion** (Petsiuk et al. 2018) then says whether a map found what matters: remove the
pixels in the map's order (or insert them into a blurred copy) and follow the class's probability; the area
under that curve against the same for random orders of the same smoothness is a ratio, below 1 (deletion) or
above 1 (insertion) when the map beats chance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from vision_backend.classification import imagenet
from vision_backend.classification.classifiers import engine_title
from vision_backend.errors import SettingError
from vision_backend.imageops import fit_long_side
from vision_backend.model import Param

Probabilities = Callable[[Sequence[np.ndarray]], np.ndarray]
"""RGB uint8 photos in, (N, classes) probabilities out: all a gradient-free method asks of a classifier."""
Progress = Callable[[int, int], None]
"""``progress(done, total)``: photos through the classifier so far, of how many."""
BATCH = 32
"""Masked copies per call to the classifier: large enough to keep the engine busy, small in memory."""


@dataclass(frozen=True)
class Saliency:
    """One explanation: ``map`` in [0, 1] (at the working copy's size, or Grad-CAM's layer grid; stretch it
    over the photo), the class it explains, the method, its wall time and photos run through the model."""

    map: np.ndarray
    class_index: int
    method: str
    seconds: float
    evaluations: int = 0
    layer: str = ""
    """Grad-CAM's layer; empty for the gradient-free methods."""


# ---- shared pieces -----------------------------------------------------------------------------
def working_copy(photo: np.ndarray, side: int) -> np.ndarray:
    """The photo shrunk (never enlarged) to ``side`` on its long side: where the masking happens."""
    return np.ascontiguousarray(fit_long_side(np.asarray(photo, np.uint8), side)[0][..., :3])


def blurred(image: np.ndarray) -> np.ndarray:
    """A heavily blurred copy: the photo's colours without its shapes (RISE's and insertion's canvas)."""
    sigma = max(image.shape[:2]) / 16
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma)


def filler(image: np.ndarray, fill: str) -> np.ndarray:
    """What hidden pixels become: mid grey, black (RISE's paper) or the blurred photo."""
    if fill == "blur":
        return blurred(image)
    return np.full_like(image, 0 if fill == "black" else 128)


def normalised(values: np.ndarray) -> np.ndarray:
    """``values`` scaled to [0, 1] (all zeros when flat)."""
    values = np.asarray(values, np.float32)
    low, high = float(values.min()), float(values.max())
    return np.zeros_like(values) if high - low <= 1e-12 else (values - low) / (high - low)


def scores(copies: Iterable[np.ndarray], total: int, probabilities: Probabilities, class_index: int,
           progress: Progress | None = None, batch: int = BATCH) -> np.ndarray:
    """The class's probability for each copy, ``batch`` copies per call to the classifier."""
    found: list[np.ndarray] = []
    chunk: list[np.ndarray] = []
    for copy in copies:
        chunk.append(copy)
        if len(chunk) == batch:
            found.append(np.asarray(probabilities(chunk), np.float64)[:, class_index])
            chunk = []
            if progress:
                progress(sum(map(len, found)), total)
    if chunk:
        found.append(np.asarray(probabilities(chunk), np.float64)[:, class_index])
    if progress:
        progress(total, total)
    return np.concatenate(found) if found else np.zeros(0)


def explained_class(image: np.ndarray, probabilities: Probabilities, class_index: int | None) -> tuple[int, float]:
    """The class to explain (the top one unless given) and its probability on the unmasked working copy."""
    probs = np.asarray(probabilities([image]), np.float64)[0]
    index = int(np.argmax(probs)) if class_index is None else int(class_index)
    if not 0 <= index < len(probs):
        raise SettingError(f"the classifier has {len(probs)} classes; there is no class {index}")
    return index, float(probs[index])


# ---- occlusion ---------------------------------------------------------------------------------
def positions(length: int, patch: int, stride: int) -> list[int]:
    """Where a patch starts along one side, the last one flush with the edge so every pixel is covered."""
    starts = list(range(0, max(1, length - patch + 1), stride))
    return starts if starts[-1] == length - patch else starts + [length - patch]


def occlusion(photo: np.ndarray, probabilities: Probabilities, class_index: int | None = None, patch: int = 48,
              stride: int = 16, fill: str = "grey", side: int = 224, progress: Progress | None = None) -> Saliency:
    """Occlusion (Zeiler & Fergus 2014): each pixel's importance is the mean drop in the class's probability
    over the patches that hide it, scaled to [0, 1] (the lowest: where hiding helped the class most)."""
    started = time.perf_counter()
    image = working_copy(photo, side)
    height, width = image.shape[:2]
    patch = max(1, min(int(patch), height, width))
    stride = max(1, min(int(stride), patch))
    index, base = explained_class(image, probabilities, class_index)
    hidden = filler(image, fill)
    boxes = [(y, x) for y in positions(height, patch, stride) for x in positions(width, patch, stride)]

    def copies() -> Iterator[np.ndarray]:
        for y, x in boxes:
            copy = image.copy()
            copy[y : y + patch, x : x + patch] = hidden[y : y + patch, x : x + patch]
            yield copy

    drops = base - scores(copies(), len(boxes), probabilities, index, progress)
    total, count = np.zeros((height, width)), np.zeros((height, width))
    for (y, x), drop in zip(boxes, drops):
        total[y : y + patch, x : x + patch] += drop
        count[y : y + patch, x : x + patch] += 1
    heat = normalised(total / np.maximum(count, 1))
    return Saliency(heat, index, "occlusion", time.perf_counter() - started, len(boxes) + 1)


# ---- RISE --------------------------------------------------------------------------------------
def random_masks(count: int, height: int, width: int, cells: int, keep: float, rng: np.random.Generator
                 ) -> np.ndarray:
    """RISE's masks: a ``cells`` x ``cells`` grid of coin flips, stretched bilinearly to one cell more than the
    photo and shifted by a random fraction of a cell, so the masks are smooth and their edges fall anywhere."""
    cell_h, cell_w = -(-height // cells), -(-width // cells)
    grids = (rng.random((count, cells, cells)) < keep).astype(np.float32)
    masks = np.empty((count, height, width), np.float32)
    for i, grid in enumerate(grids):
        big = cv2.resize(grid, ((cells + 1) * cell_w, (cells + 1) * cell_h), interpolation=cv2.INTER_LINEAR)
        dy, dx = int(rng.integers(cell_h)), int(rng.integers(cell_w))
        masks[i] = big[dy : dy + height, dx : dx + width]
    return masks


def rise(photo: np.ndarray, probabilities: Probabilities, class_index: int | None = None, masks: int = 400,
         cells: int = 7, keep: float = 0.5, fill: str = "blur", side: int = 224, seed: int = 0,
         progress: Progress | None = None) -> Saliency:
    """RISE (Petsiuk et al. 2018): the class's mean probability where a pixel was kept minus where it was
    hidden, over random masks (the paper's score-weighted mask sum, less the noise of uneven coverage)."""
    started = time.perf_counter()
    image = working_copy(photo, side)
    height, width = image.shape[:2]
    index, _ = explained_class(image, probabilities, class_index)
    hidden = filler(image, fill).astype(np.float32)
    rng = np.random.default_rng(seed)
    kept, weighted, total = np.zeros((height, width)), np.zeros((height, width)), 0.0
    for start in range(0, int(masks), BATCH):  # a batch of masks at a time: memory stays one batch's
        drawn = random_masks(min(BATCH, int(masks) - start), height, width, int(cells), float(keep), rng)
        copies = image * drawn[..., None] + hidden * (1 - drawn[..., None])
        found = np.asarray(probabilities(list(copies.round().astype(np.uint8))), np.float64)[:, index]
        kept, weighted, total = kept + drawn.sum(0), weighted + np.tensordot(found, drawn, 1), total + found.sum()
        if progress:
            progress(start + len(drawn), int(masks))
    heat = weighted / np.maximum(kept, 1e-6) - (total - weighted) / np.maximum(int(masks) - kept, 1e-6)
    return Saliency(normalised(heat), index, "rise", time.perf_counter() - started, int(masks) + 1)


# ---- deletion / insertion ----------------------------------------------------------------------
@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion curves (Petsiuk et al. 2018) for a map and for random orders on the same photo:
    the class's probability after removing (inserting) each share of the pixels, in the map's order."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    """The mean curve over the random orders."""
    random_insertion: np.ndarray
    randoms: int
    seconds: float
    evaluations: int

    def auc(self, curve: np.ndarray) -> float:
        """Area under a curve over the share of pixels (trapezoids): 0..1."""
        return float(np.sum((curve[1:] + curve[:-1]) * np.diff(self.fractions)) / 2)

    @property
    def deletion_vs_random(self) -> float:
        """The map's deletion AUC over random's: below 1 when removing what the map points at hurts sooner."""
        return _ratio(self.auc(self.deletion), self.auc(self.random_deletion))

    @property
    def insertion_vs_random(self) -> float:
        """The map's insertion AUC over random's: above 1 when what the map points at restores the class sooner."""
        return _ratio(self.auc(self.insertion), self.auc(self.random_insertion))


def _ratio(mine: float, chance: float) -> float:
    return mine / chance if chance > 0 else float("nan")


def ranking(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flat pixel indices, most important first. Ties (a map's flat parts) go in a smooth random order: broken
    pixel by pixel they would make the salt-and-pepper noise :func:`random_map` explains."""
    flat = np.asarray(values, np.float64).ravel()
    tie_break = random_map(*np.shape(values), rng).ravel()
    return np.lexsort((tie_break, -flat))


def random_map(height: int, width: int, rng: np.random.Generator, grid: int = 7) -> np.ndarray:
    """A random map as smooth as a real one (uniform noise on a ``grid`` x ``grid`` grid, stretched): removing
    pixels one by one at random would make salt-and-pepper noise, which hurts a CNN far more than blobs do,
    and the comparison would measure the shape of the removal rather than where it is."""
    return cv2.resize(rng.random((grid, grid)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)


def _curve_copies(image: np.ndarray, removed: np.ndarray, canvas: np.ndarray, orders: list[np.ndarray],
                  counts: np.ndarray) -> Iterator[np.ndarray]:
    """For each order and inner step: the photo with its first pixels removed, then the canvas with them inserted."""
    flat, gone, blank = image.reshape(-1, 3), removed.reshape(-1, 3), canvas.reshape(-1, 3)
    for order in orders:
        for count in counts[1:-1]:
            first = order[:count]
            deleted, inserted = flat.copy(), blank.copy()
            deleted[first], inserted[first] = gone[first], flat[first]
            yield deleted.reshape(image.shape)
            yield inserted.reshape(image.shape)


def deletion_insertion(photo: np.ndarray, probabilities: Probabilities, heatmap: np.ndarray, class_index: int,
                       steps: int = 16, randoms: int = 4, side: int = 224, seed: int = 0,
                       progress: Progress | None = None) -> Faithfulness:
    """Deletion (pixels set to black, as in the paper) and insertion (into the blurred photo) in ``steps``
    steps along the map's order and ``randoms`` random orders; the three end points are shared."""
    started = time.perf_counter()
    image = working_copy(photo, side)
    height, width = image.shape[:2]
    values = cv2.resize(np.asarray(heatmap, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    rng = np.random.default_rng(seed)
    orders = [ranking(values, rng)] + [ranking(random_map(height, width, rng), rng) for _ in range(int(randoms))]
    counts = np.round(np.linspace(0, height * width, int(steps) + 1)).astype(int)
    removed, canvas = np.zeros_like(image), blurred(image)
    inner = 2 * len(orders) * (len(counts) - 2)
    copies = iter([image, removed, canvas])
    found = scores((c for part in (copies, _curve_copies(image, removed, canvas, orders, counts)) for c in part),
                   inner + 3, probabilities, class_index, progress)
    deletion, insertion = _curves(found, len(orders), len(counts))
    return Faithfulness(counts / counts[-1], deletion[0], insertion[0], deletion[1:].mean(0), insertion[1:].mean(0),
                        int(randoms), time.perf_counter() - started, inner + 3)


def _curves(found: np.ndarray, orders: int, points: int) -> tuple[np.ndarray, np.ndarray]:
    """(orders, points) deletion and insertion curves from the scores: the photo, black, blurred, then the inner
    steps (deleted, inserted) of each order."""
    whole, none, blank = found[:3]
    inner = found[3:].reshape(orders, points - 2, 2)
    ends = np.ones((orders, 1))
    return (np.concatenate([ends * whole, inner[..., 0], ends * none], 1),
            np.concatenate([ends * blank, inner[..., 1], ends * whole], 1))


# ---- the methods as data -----------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """A way to explain a class: its settings (pages build their widgets from them), whether it needs gradients
    (Grad-CAM: Keras models only) and one line on what it does."""

    name: str
    title: str
    params: tuple[Param, ...]
    about: str
    gradients: bool = False

    def settings(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The defaults with ``overrides`` applied, each checked against its :class:`Param`."""
        known = {p.name: p for p in self.params}
        unknown = set(overrides or {}) - set(known)
        if unknown:
            raise SettingError(f"{self.title} has no setting {', '.join(sorted(unknown))}; it has "
                               f"{', '.join(known) or 'none'}")
        return {**{p.name: p.default for p in self.params},
                **{k: known[k].coerce(v) for k, v in (overrides or {}).items()}}


FILLS = (("grey", "mid grey"), ("blur", "the blurred photo"), ("black", "black"))
SIDE = Param("side", "Working copy (px, long side)", 224, options=(128, 160, 224, 320),
             help="The photo is shrunk to this before masking: smaller is faster, coarser.")
OCCLUSION = Method("occlusion", "Occlusion", (
    Param("patch", "Patch (px)", 48, 16, 112, 8, help="The side of the square hidden at each position."),
    Param("stride", "Stride (px)", 16, 4, 56, 4, help="How far the patch moves: smaller is finer and slower."),
    Param("fill", "Hidden pixels become", "grey", options=tuple(f for f, _ in FILLS), option_labels=FILLS),
    SIDE), "hides one square at a time: red is where hiding it lowers the class's probability most")
RISE = Method("rise", "RISE", (
    Param("masks", "Random masks", 400, 100, 2000, 100, help="More masks: a steadier map, linearly slower."),
    Param("cells", "Mask grid (cells a side)", 7, 3, 16, 1, help="Fewer cells: larger blobs hidden at once."),
    Param("keep", "Share kept per mask", 0.5, 0.1, 0.9, 0.05),
    Param("fill", "Hidden pixels become", "blur", options=tuple(f for f, _ in FILLS), option_labels=FILLS),
    SIDE, Param("seed", "Random seed", 0, 0, 99, 1)),
    "runs the photo under hundreds of random masks: red is where keeping the pixels raises the class most")
GRAD_CAM = Method("grad_cam", "Grad-CAM", (), "weighs the last convolutional feature maps by the gradient of the "
                  "class's score: red is where the evidence for that class is", gradients=True)
METHODS = {m.name: m for m in (GRAD_CAM, OCCLUSION, RISE)}
"""Every method by name; Grad-CAM only where there are gradients."""
FAITHFULNESS = (Param("steps", "Deletion/insertion steps", 16, 4, 64, 4),
                Param("randoms", "Random orders to compare with", 4, 1, 16, 1))
GRADIENT_FREE: dict[str, Callable[..., Saliency]] = {"occlusion": occlusion, "rise": rise}


def explain(photo: np.ndarray, probabilities: Probabilities, method: str = "occlusion", class_index: int | None = None,
            progress: Progress | None = None, **settings: Any) -> Saliency:
    """A gradient-free map of ``photo`` for any classifier given only its ``probabilities`` (a registered model
    on any engine, a saved transfer model, a live camera frame): ``method`` is ``occlusion`` or ``rise``."""
    if method not in GRADIENT_FREE:
        raise SettingError(f"{method!r} is not a gradient-free method; there are {', '.join(GRADIENT_FREE)}")
    chosen = METHODS[method].settings(settings)
    return GRADIENT_FREE[method](photo, probabilities, class_index, progress=progress, **chosen)


# ---- classifiers to explain --------------------------------------------------------------------
def grad_cam(explainable: Any, photo: np.ndarray, class_index: int | None = None) -> Saliency:
    """Grad-CAM on a Keras model (a :class:`~vision_backend.classification.gradcam.Explainable`) as a
    :class:`Saliency`: the map at its layer's grid, over the model's own input of the photo."""
    started = time.perf_counter()
    cam, index = explainable.explain(explainable.batch(photo), class_index)
    return Saliency(np.asarray(cam, np.float32), int(index), "grad_cam", time.perf_counter() - started, 1,
                    explainable.layer)


@dataclass(frozen=True)
class Subject:
    """A classifier to explain: its probabilities on RGB photos, its class names and, where there are gradients
    (a Keras model), what Grad-CAM needs (``gradients()`` builds it on first use)."""

    title: str
    probabilities: Probabilities
    class_names: Sequence[str]
    gradients: Callable[[], Any] | None = None

    def methods(self) -> list[Method]:
        return [m for m in METHODS.values() if self.gradients is not None or not m.gradients]

    def top(self, photo: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
        """The ``k`` most probable classes of ``photo``: (class index, probability), best first."""
        probs = np.asarray(self.probabilities([photo]), np.float64)[0]
        return [(int(i), float(probs[i])) for i in np.argsort(-probs, kind="stable")[:k]]

    def explain(self, photo: np.ndarray, method: str, class_index: int | None = None,
                progress: Progress | None = None, **settings: Any) -> Saliency:
        if METHODS.get(method, OCCLUSION).gradients:
            if self.gradients is None:
                raise SettingError(f"{self.title} has no gradients here (int8, TFLite or ONNX): Grad-CAM needs a "
                                   "Keras model; occlusion and RISE explain it")
            return grad_cam(self.gradients(), photo, class_index)
        return explain(photo, self.probabilities, method, class_index, progress, **settings)

    def faithfulness(self, photo: np.ndarray, saliency: Saliency, progress: Progress | None = None,
                     **settings: Any) -> Faithfulness:
        """Deletion / insertion of ``saliency``'s map against random orders, at its working copy's size."""
        return deletion_insertion(photo, self.probabilities, saliency.map, saliency.class_index,
                                  progress=progress, **settings)


def classifier_probabilities(classifier: Any, engine: str | None = None, runner: Any = None) -> Probabilities:
    """A registered ImageNet classifier's probabilities through its own ``classify`` (its preprocessing, its
    engine under its lock, or a worker's own ``runner``): 1,000 classes in Keras' order."""
    def probabilities(images: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([p.probabilities for p in classifier.classify(list(images), engine, 1, runner)])

    return probabilities


def classifier_subject(classifier: Any, engine: str | None = None, runner: Any = None) -> Subject:
    """A registered ImageNet classifier on one engine; Grad-CAM where that engine is Keras."""
    from vision_backend.classification import gradcam  # the Keras side only when asked: the core stays light

    engine = runner.engine if runner is not None else engine or classifier.engines[0]
    gradients = (lambda: gradcam.imagenet_explainable(classifier)) if engine == "keras" else None
    return Subject(f"{classifier.title} on {engine_title(engine)}",
                   classifier_probabilities(classifier, engine, runner), imagenet.labels(), gradients)


def keras_subject(title: str, explainable: Any) -> Subject:
    """A Keras classifier with its gradients (the flowers demo, a saved transfer model): every method applies."""
    return Subject(title, explainable.probabilities, list(explainable.class_names), lambda: explainable)


def saved_subject(saved: Any) -> Subject:
    """A model saved in a transfer-learning project (loaded once, shared, called under its lock)."""
    from vision_backend.classification import gradcam  # the transfer package loads only when a saved model is asked

    return keras_subject(f"Your model {saved.stem}", gradcam.saved_explainable(saved))
