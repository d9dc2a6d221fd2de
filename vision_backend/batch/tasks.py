"""One task a subcommand: a small object that loads its models once and turns photos into rows.

A task is built where the command is typed: :meth:`Task.resolve` checks every name and setting
against the model's own :class:`~vision_backend.model.Param` list before a photo is read, and
gathers what lives with that machine (a gallery's embeddings, a project's trained model). It is
then sent as it is to wherever the work runs (this process, or each Ray actor), where
:meth:`Task.load` builds its engines once (fetching missing files into that node's cache first).
:meth:`Task.read` reads, decodes and preprocesses one photo (threads run it side by side);
:meth:`Task.infer` runs a batch of them through the model. The results are the pages': the same
model objects, preprocessing, decoding and settings; only the engines run with batch settings:
one lane a core, each with a one-thread engine, batches where the graph takes them (see
:meth:`Task.open_lanes`).

A photo that cannot be read or decoded, or that breaks the model, becomes a row with an ``error``
(intake's message, never a traceback) and the run goes on.
"""

from __future__ import annotations

import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vision_backend import engines, fetch, paths
from vision_backend.batch.decode import decode, read_bytes
from vision_backend.cards import ModelCard
from vision_backend.detections import Detections
from vision_backend.intake import ImageIntakeError

DEFAULT_CLASSIFIER = "mobilenetv2_int8_onnx"
DEFAULT_FACE_DETECTOR = "yunet"
DEFAULT_OBJECT_DETECTOR = "nanodet_m"
DEFAULT_EMBEDDER = "dlib_resnet_face"
DRAFT_MARGIN = 2
"""A draft-decoded photo keeps at least this many times the pixels a model works at (see ``decode``)."""
PHOTO_PIXEL_SETTINGS = ("min_size", "max_size", "min_face_size", "min_face")
"""Settings counted in the photo's own pixels: a detector with one is never drafted (its meaning would change)."""
SHARED_ENGINE = frozenset({"mtcnn"})
"""Face detectors kept to their one shared engine: MTCNN's TensorFlow graphs are costly to copy and use every core."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "str"
    """``str``, ``int``, ``float``, ``json`` (nested; text in CSV and Parquet) or ``vector`` (float32 list)."""


@dataclass
class Photo:
    """One photo on its way through a task: decoded and prepared, or the reason it could not be."""

    path: str
    image: np.ndarray | None = None
    scale: float = 1.0
    size: tuple[int, int] = (0, 0)
    blob: Any = None
    error: str = ""


Result = tuple[dict[str, Any], list[dict[str, Any]]]
"""What a task finds in one photo: the photo's own fields, and one dict per detection."""


def ensure_ready(card: ModelCard) -> None:
    """The card's files fetched into this node's cache on first use, or one line saying how to get them."""
    if not card.ready():
        outcome = fetch.ensure(card)
        if not outcome.ok:
            raise RuntimeError(f"{card.title}: {outcome.message}")
    card.require()


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1




def box_fields(record: dict[str, Any], label: bool = False) -> dict[str, Any]:
    """A :meth:`Detections.to_records` row with its box as four columns (x1, y1, x2, y2); the label
    only where there is more than one class."""
    record = dict(record)
    x1, y1, x2, y2 = record.pop("box_xyxy")
    if not label:
        record.pop("label", None)
    return {**record, "x1": x1, "y1": y1, "x2": x2, "y2": y2}


BOX_COLUMNS = (Column("score", "float"), Column("x1", "float"), Column("y1", "float"), Column("x2", "float"),
               Column("y2", "float"))


class Task:
    """The shape every subcommand shares; subclasses say what a photo gives."""

    name = ""
    count = ""
    """The photo field that says how many detections it has (and names each detection's index)."""
    tally = ""
    """The field whose values the end summary counts (labels, names)."""

    def __init__(self, model: str, settings: dict[str, Any] | None = None, per: str = "detection",
                 threads: int = 0, draft: bool = False, spinning: bool = False):
        self.model = model
        self.overrides = dict(settings or {})
        self.per = per
        self.threads = threads
        self.draft = draft
        self.spinning = spinning
        """One engine on every core with its threads spinning, instead of a one-thread engine a lane."""
        self.settings: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        """What travels to a Ray actor: the choices, never the loaded engines (names starting ``_``)."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    # ---- where the command is typed ------------------------------------------------------------
    def resolve(self, photos: list[str]) -> "Task":
        """Check names and settings (ValueError / KeyError with a readable message) before any work."""
        return self

    def photo_columns(self) -> list[Column]:
        return []

    def detection_columns(self) -> list[Column]:
        return []

    def columns(self) -> list[Column]:
        """Every column a row can have, in order: ``path`` first, ``error`` last."""
        detections = self.detection_columns()
        if detections:
            detections = detections if self.per == "detection" else [Column("detections", "json")]
        return [Column("path"), *self.photo_columns(), *detections, Column("error")]

    # ---- where the work runs -------------------------------------------------------------------
    def load(self) -> None:
        """Build the engines once in this process."""

    def engine_threads(self) -> int:
        return self.threads or cores()

    @property
    def lanes(self) -> int:
        return 1 if self.spinning else self.engine_threads()

    def open_lanes(self) -> None:
        """One lane a core: photos (or parts of a batch) run side by side, each on an engine with one
        thread. On 2 cores, with photos decoded beside them, this beat one run on both cores with
        spinning on by 1.7x for NanoDet, 2x for YuNet and 1.15x for MobileNetV2 batches: spinning
        threads take the cores the decoding needs, and a small network's layers are too short for two
        threads to share without waiting on each other. A graph's run alone is as fast either way."""
        self._lanes = ThreadPoolExecutor(self.lanes, thread_name_prefix=self.name) if self.lanes > 1 else None

    def onnx_session(self, path: Path | str | bytes) -> Any:
        """For lanes: one session several threads run at once, each run on one thread, so no intra-op pool
        spins between runs. With ``spinning``: every core on each run, spinning on (the issue's first plan)."""
        if self.spinning:
            return engines.onnx_session(path, spinning=True, threads=self.engine_threads())
        return engines.onnx_session(path, spinning=False, threads=1)

    def each(self, function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """``function`` on every item, across the lanes when there are several, results in order."""
        lanes = getattr(self, "_lanes", None)
        return list(lanes.map(function, items)) if lanes else [function(item) for item in items]

    def parts(self, photos: list[Photo]) -> list[list[Photo]]:
        """A batch cut into one consecutive part a lane."""
        size = -(-len(photos) // self.lanes)
        return [photos[start : start + size] for start in range(0, len(photos), size)]

    def wanted(self, width: int, height: int) -> tuple[int, int] | None:
        """With ``draft``: the smallest decoded size the model's own shrinking allows (None: decode in full).

        Off by default, so every row is the page's to the pixel; on, a large JPEG decodes several
        times faster and boxes move by less than one pixel of the model's input."""
        return None

    def prepare(self, photo: Photo) -> Any:
        """Per-photo preprocessing that can run on a thread beside the model (the model's input blob)."""
        return None

    def infer(self, photos: list[Photo]) -> list[Result]:
        raise NotImplementedError

    def read(self, path: str) -> Photo:
        """One photo read, decoded and prepared; the reason it cannot be is kept, never raised."""
        name = Path(path).name
        try:
            decoded = decode(read_bytes(path), name, self.wanted if self.draft else None)
            photo = Photo(path, decoded.image, decoded.scale, (decoded.width, decoded.height))
            photo.blob = self.prepare(photo)
            return photo
        except ImageIntakeError as error:
            return Photo(path, error=str(error))
        except Exception as error:  # noqa: BLE001 - one odd photo never stops a run of thousands
            return Photo(path, error=f"“{name}” could not be prepared: {error}")

    def finish(self, photos: list[Photo]) -> list[dict[str, Any]]:
        """Rows for prepared photos, in their order; each photo's image is dropped once it is done."""
        ready = [p for p in photos if not p.error]
        results = dict(zip(map(id, ready), self._results(ready)))
        rows: list[dict[str, Any]] = []
        for photo in photos:
            outcome = results.get(id(photo), photo.error)
            rows += [{"path": photo.path, "error": outcome}] if isinstance(outcome, str) else \
                self.shape(photo.path, *outcome)
            photo.image = photo.blob = None
        return rows

    def run(self, photos: list[str]) -> list[dict[str, Any]]:
        """:meth:`read` then :meth:`finish`, one after the other (what each Ray actor does)."""
        return self.finish([self.read(p) for p in photos])

    def _results(self, photos: list[Photo]) -> list[Result | str]:
        """The batch through the model; when it fails, each photo alone, so one bad photo costs one row."""
        if not photos:
            return []
        try:
            return list(self.infer(photos))
        except Exception as error:  # noqa: BLE001
            if len(photos) == 1:
                return [f"“{Path(photos[0].path).name}”: the model failed on this photo ({error})"]
            return [r for p in photos for r in self._results([p])]

    def shape(self, path: str, fields: dict[str, Any], detections: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One row per detection (a photo with none still gets one), or one per photo with a list."""
        if not self.detection_columns():
            return [{"path": path, **fields}]
        if self.per == "photo":
            return [{"path": path, **fields, "detections": detections}]
        return [{"path": path, **fields, **d} for d in detections] or [{"path": path, **fields}]


# ---- classify --------------------------------------------------------------------------------------
class Classify(Task):
    """An ImageNet classifier: top-k labels per photo, batched through its ONNX graph."""

    name = "classify"
    tally = "label"

    def __init__(self, model: str = DEFAULT_CLASSIFIER, top: int = 5, **common: Any):
        super().__init__(model, **common)
        self.top = top

    @property
    def classifier(self) -> Any:
        from vision_backend.classification import CLASSIFIERS

        return _known(CLASSIFIERS, self.model, "ImageNet classifier")

    def resolve(self, photos: list[str]) -> "Classify":
        self.settings = self.classifier.settings(self.overrides)
        if "onnx" not in self.classifier.engines:
            raise ValueError(f"{self.classifier.title} has no ONNX engine for batch work")
        return self

    def photo_columns(self) -> list[Column]:
        return [Column("model"), Column("label"), Column("id"), Column("probability", "float"), Column("top", "json")]

    def load(self) -> None:
        from vision_backend.classification.classifiers import onnx_runner

        ensure_ready(self.classifier.card)
        session = self.onnx_session(self.onnx_file())
        self._run = onnx_runner(session)
        self.open_lanes()

    def onnx_file(self) -> Path:
        """The classifier's ONNX graph: its own file, or its conversion (made once, as the pages make it)."""
        from vision_backend.classification.convert import converted_path

        classifier = self.classifier
        if classifier.engines[0] == "onnx":
            return classifier.card.path()
        path = converted_path(classifier.name)
        if not path.is_file():
            classifier.runtime("onnx")
            classifier.unload()
        return path

    def wanted(self, width: int, height: int) -> tuple[int, int] | None:
        from vision_backend.classification import KerasApplication

        size = self.classifier.size * DRAFT_MARGIN  # only Keras's resize_square shrinks by area averaging
        return (size, size) if isinstance(self.classifier, KerasApplication) else None

    def prepare(self, photo: Photo) -> np.ndarray:
        return self.classifier.preprocess([photo.image])[0]

    def infer(self, photos: list[Photo]) -> list[Result]:
        """The batch in one part a lane, each part one run of the graph (its batch axis is free)."""
        runs = self.each(lambda part: self.results(self._run(np.stack([p.blob for p in part]))), self.parts(photos))
        return [result for run in runs for result in run]

    def results(self, raw: np.ndarray) -> list[Result]:
        """Raw outputs of a batch -> each photo's top-k, as :meth:`ImageNetClassifier.classify` decodes them."""
        from vision_backend.classification import imagenet

        rows = imagenet.decode(self.classifier.probabilities(np.asarray(raw)), self.top)
        return [({"model": self.model, "label": top[0][1], "id": top[0][0], "probability": round(top[0][2], 4),
                  "top": [{"label": label, "id": wnid, "probability": round(p, 4)} for wnid, label, p in top]}, [])
                for top in rows]


class ProjectClassify(Task):
    """The newest model trained on the transfer-learning page for a project: raw 0-255 RGB in, its classes out."""

    name = "classify"
    tally = "label"

    def __init__(self, project: str, home: str | None = None, **common: Any):
        super().__init__(project, **common)
        self.home = home
        self.stem, self.classes, self.weights = "", [], b""

    def resolve(self, photos: list[str]) -> "ProjectClassify":
        from vision_backend.workspace import Workspace

        root = Path(self.home).expanduser() if self.home else paths.app_home()
        if not (root / "projects" / self.model / "catalogue.sqlite").is_file():
            raise ValueError(f"There is no project called “{self.model}” in {root}.")
        saved = Workspace(root).project(self.model, create=False).saved_models()
        if not saved:
            raise ValueError(f"Project “{self.model}” has no trained model: train and keep one on the "
                             "transfer-learning page first.")
        self.stem, (path, meta) = max(saved.items(), key=lambda item: item[1][0].stat().st_mtime)
        self.classes = list(meta["classes"])
        self.weights = path.read_bytes()  # travels with the task: a cluster's nodes need not see the workspace
        return self

    def photo_columns(self) -> list[Column]:
        return [Column("model"), Column("label"), Column("probability", "float"), Column("probabilities", "json")]

    def load(self) -> None:
        from vision_backend.transfer.export import load_saved

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{self.stem or 'model'}.keras"
            path.write_bytes(self.weights)
            self._model = load_saved(path)

    def wanted(self, width: int, height: int) -> tuple[int, int]:
        size = int(self._model.inputs[0].shape[1]) * DRAFT_MARGIN
        return size, size

    def infer(self, photos: list[Photo]) -> list[Result]:
        from vision_backend.transfer.export import photo_probabilities

        probabilities = photo_probabilities(self._model, [p.image for p in photos])
        return [({"model": f"{self.model}/{self.stem}", "label": self.classes[int(p.argmax())],
                  "probability": round(float(p.max()), 4),
                  "probabilities": {c: round(float(v), 4) for c, v in zip(self.classes, p)}}, [])
                for p in probabilities]


# ---- faces -----------------------------------------------------------------------------------------
class Faces(Task):
    """A face detector with the page's settings; ``blur`` writes anonymised copies into a folder."""

    name = "faces"
    count = "faces"

    def __init__(self, model: str = DEFAULT_FACE_DETECTOR, blur: str | None = None, pixelate: bool = False,
                 **common: Any):
        super().__init__(model, **common)
        self.blur = str(Path(blur).expanduser().resolve()) if blur else None
        self.mode = "pixelate" if pixelate else "blur"
        self.base = ""

    @property
    def detector(self) -> Any:
        from vision_backend.face_detection import DETECTORS

        return _known(DETECTORS, self.model, "face detector")

    def resolve(self, photos: list[str]) -> "Faces":
        self.settings = self.detector.settings(self.overrides)
        if self.blur:
            self.base = common_folder(photos)
        return self

    def photo_columns(self) -> list[Column]:
        return [Column("model"), Column("faces", "int"), *([Column("anonymised")] if self.blur else [])]

    def detection_columns(self) -> list[Column]:
        landmarks = [Column("landmarks", "json")] if self.detector.has_landmarks else []
        return [Column("face", "int"), *BOX_COLUMNS, *landmarks]

    def load(self) -> None:
        """Lanes sharing one one-thread ONNX Runtime session (YuNet), or with an OpenCV or dlib engine each
        (loaded on first use in its thread), OpenCV on one thread a lane."""
        import cv2

        ensure_ready(self.detector.card)
        self._local = threading.local()
        self._session = self.onnx_session(self.detector.graph()) if hasattr(self.detector, "graph") else None
        if self.model not in SHARED_ENGINE and not self.spinning:
            cv2.setNumThreads(1)
            self.open_lanes()

    def detect(self, image: np.ndarray) -> Detections:
        """The detector's own ``infer`` and tidying (as :meth:`Detector.detect`), on this lane's engine."""
        if self.model in SHARED_ENGINE:
            return self.detector.detect(image, **self.settings)
        engine = self._session or getattr(self._local, "engine", None)
        if engine is None:
            variant = self.detector.variant(self.settings)
            engine = self._local.engine = self.detector.load() if variant is None else self.detector.load(variant)
        return self.detector.infer(engine, image, **self.settings).finite().clipped(
            image.shape[1], image.shape[0]).sorted()

    def wanted(self, width: int, height: int) -> tuple[int, int] | None:
        """Drafted only for detectors that shrink to a working side and take no size in photo pixels
        (YuNet): Viola-Jones's, MTCNN's and HOG's smallest faces are counted in the decoded photo."""
        if self.blur or any(name in self.settings for name in PHOTO_PIXEL_SETTINGS):
            return None  # the anonymised copy is written at the photo's own size
        return _long_side(width, height, self.settings.get("max_side"))

    def infer(self, photos: list[Photo]) -> list[Result]:
        return self.each(self.faces, photos)

    def faces(self, photo: Photo) -> Result:
        found = in_photo(self.detect(photo.image), photo)
        fields: dict[str, Any] = {"model": self.model, "faces": len(found)}
        if self.blur:
            fields["anonymised"] = str(self.write_copy(photo, found))
        return fields, [{"face": i + 1, **box_fields(r)} for i, r in enumerate(found.to_records())]

    def write_copy(self, photo: Photo, found: Detections) -> Path:
        from vision_backend import drawing
        from vision_backend.intake import encode_jpeg, encode_png
        from vision_backend.storage import atomic_write

        target = copy_path(Path(self.blur), self.base, photo.path)
        image = drawing.anonymise(photo.image, found, self.mode)
        jpeg = target.suffix.lower() in (".jpg", ".jpeg")
        atomic_write(target, encode_jpeg(image, 95) if jpeg else encode_png(image))  # metadata (GPS) is not copied
        return target


def in_photo(found: Detections, photo: Photo) -> Detections:
    """Detections on a draft-decoded copy, back in the photo's own pixels."""
    if photo.scale == 1:
        return found
    return found.scaled(photo.scale).clipped(*photo.size)


def _long_side(width: int, height: int, side: int | None) -> tuple[int, int] | None:
    """The decoded size that keeps the long side at ``DRAFT_MARGIN`` x ``side`` (for models that shrink to it)."""
    if not side:
        return None
    factor = DRAFT_MARGIN * side / max(width, height)
    return max(1, int(np.ceil(width * factor))), max(1, int(np.ceil(height * factor)))


def common_folder(photos: list[str]) -> str:
    """The deepest folder holding every photo, from which anonymised copies mirror the layout."""
    folders = [os.path.dirname(os.path.abspath(p)) for p in photos]
    return os.path.commonpath(folders) if folders else ""


def copy_path(folder: Path, base: str, path: str) -> Path:
    """Where the anonymised copy of ``path`` goes: its place below ``base`` mirrored inside ``folder``, every
    part made safe (no separators, no leading dots, so no ``..``), never outside ``folder``.

    Two photos of one name in different folders stay apart; formats other than JPEG become PNG.
    """
    from vision_backend.storage import safe_part

    relative = os.path.relpath(os.path.abspath(path), base) if base else Path(path).name
    parts = [safe_part(part, "photo") for part in Path(relative).parts]
    target = folder.joinpath(*parts)
    if target.suffix.lower() not in (".jpg", ".jpeg", ".png"):
        target = target.with_name(target.name + ".png")
    if not target.resolve().is_relative_to(folder.resolve()):
        raise ValueError(f"“{Path(path).name}” would be written outside {folder}; refused")
    return target


# ---- objects ---------------------------------------------------------------------------------------
class Objects(Task):
    """A COCO detector on its own ONNX Runtime session: the model's preprocess on threads, run, decode."""

    name = "objects"
    count = "objects"
    tally = "label"

    def __init__(self, model: str = DEFAULT_OBJECT_DETECTOR, **common: Any):
        super().__init__(model, **common)

    @property
    def detector(self) -> Any:
        from vision_backend.object_detection import DETECTORS

        return _known(DETECTORS, self.model, "object detector")

    def resolve(self, photos: list[str]) -> "Objects":
        self.settings = self.detector.settings(self.overrides)
        return self

    def photo_columns(self) -> list[Column]:
        return [Column("model"), Column("objects", "int")]

    def detection_columns(self) -> list[Column]:
        masks = [Column("mask_area", "int"), Column("mask", "json")] if self.detector.has_masks else []
        return [Column("object", "int"), Column("label"), Column("category_id", "int"), *BOX_COLUMNS, *masks]

    def load(self) -> None:
        """One session (safe to run from several threads) with one thread a run, and a lane a core."""
        ensure_ready(self.detector.card)
        self._session = self.onnx_session(self.detector.graph())
        self._input = self._session.get_inputs()[0].name
        self.open_lanes()

    def wanted(self, width: int, height: int) -> tuple[int, int] | None:
        size = getattr(self.detector, "size", None)  # letterboxed models shrink by area averaging
        return None if self.detector.has_masks else _long_side(width, height, size)

    def prepare(self, photo: Photo) -> Any:
        return self.detector.preprocess(photo.image)

    def infer(self, photos: list[Photo]) -> list[Result]:
        return self.each(self.objects, photos)

    def objects(self, photo: Photo) -> Result:
        """One photo as :meth:`Detector.detect` does it (decode, then finite, clipped, best first)."""
        from vision_backend.object_detection.coco import to_coco

        blob, geometry = photo.blob
        outputs = self._session.run(None, {self._input: blob})
        height, width = photo.image.shape[:2]
        found = self.detector.decode(outputs, geometry, (height, width), **self.settings)
        found = in_photo(found.finite().clipped(width, height).sorted(), photo)
        rows = []
        for i, (record, coco) in enumerate(zip(found.to_records(), to_coco(found, photo.path))):
            mask = {"mask": coco["segmentation"]} if "segmentation" in coco else {}
            rows.append({"object": i + 1, **box_fields(record, label=True), "category_id": coco["category_id"], **mask})
        return {"model": self.model, "objects": len(found)}, rows


# ---- recognize and embed ---------------------------------------------------------------------------
class Embed(Task):
    """Every face found (HOG by default, as on the recognition page) and its unit embedding."""

    name = "embed"
    count = "faces"

    def __init__(self, model: str = DEFAULT_EMBEDDER, detector: str | None = None, **common: Any):
        from vision_backend.face_recognition.recognise import FACE_FINDER

        super().__init__(model, **common)
        self.finder = detector or FACE_FINDER
        self.finder_settings: dict[str, Any] = {}

    @property
    def embedder(self) -> Any:
        from vision_backend.face_recognition import EMBEDDERS

        return _known(EMBEDDERS, self.model, "face recogniser")

    @property
    def detector(self) -> Any:
        from vision_backend.face_detection import DETECTORS

        return _known(DETECTORS, self.finder, "face detector")

    def resolve(self, photos: list[str]) -> "Embed":
        """``--set`` names the recogniser's settings (its threshold) or else the detector's."""
        mine = {k: v for k, v in self.overrides.items() if k in self.embedder.defaults()}
        self.settings = self.embedder.settings(mine)
        self.finder_settings = self.detector.settings({k: v for k, v in self.overrides.items() if k not in mine})
        return self

    def photo_columns(self) -> list[Column]:
        return [Column("model"), Column("faces", "int")]

    def detection_columns(self) -> list[Column]:
        return [Column("face", "int"), *BOX_COLUMNS, Column("embedding", "vector")]

    def load(self) -> None:
        ensure_ready(self.embedder.card)
        ensure_ready(self.detector.card)

    def analysed(self, photo: Photo) -> Any:
        from vision_backend.face_recognition.recognise import analyse

        return analyse(self.embedder, photo.image, self.finder, **self.finder_settings)

    def infer(self, photos: list[Photo]) -> list[Result]:
        results = []
        for photo in photos:
            faces = self.analysed(photo)
            rows = [{"face": i + 1, **box_fields(r), "embedding": [float(v) for v in vector]}
                    for i, (r, vector) in enumerate(zip(faces.detections.to_records(), faces.vectors))]
            results.append(({"model": self.model, "faces": len(faces)}, rows))
        return results


class Recognize(Embed):
    """Every face named by the nearest face enrolled in a workspace's gallery (or "unknown")."""

    name = "recognize"
    tally = "name"

    def __init__(self, model: str = DEFAULT_EMBEDDER, home: str | None = None, **common: Any):
        super().__init__(model, **common)
        self.home = home
        self.names: list[str] = []
        self.enrolled = np.zeros((0, 0), np.float32)

    def resolve(self, photos: list[str]) -> "Recognize":
        """The gallery read here, once: its embeddings travel with the task, the workspace stays put."""
        from vision_backend.workspace import Workspace

        super().resolve(photos)
        root = Path(self.home).expanduser() if self.home else paths.app_home()
        if not (root / "faces" / "gallery.sqlite").is_file():
            raise ValueError(f"There is no face gallery in {root}: enrol people on the face recognition page first.")
        self.names, self.enrolled = Workspace(root).gallery().embeddings(self.embedder.name, self.embedder.dimensions)
        if not self.names:
            raise ValueError(f"Nobody is enrolled for {self.embedder.title} in {root}: enrol people on the face "
                             "recognition page first.")
        return self

    def detection_columns(self) -> list[Column]:
        return [Column("face", "int"), Column("name"), Column("distance", "float"), Column("nearest"), *BOX_COLUMNS]

    def infer(self, photos: list[Photo]) -> list[Result]:
        from vision_backend.face_recognition.recognise import recognise

        results = []
        for photo in photos:
            faces = self.analysed(photo)
            matches = recognise(faces.vectors, self.names, self.enrolled, self.settings["threshold"])
            rows = [{"face": i + 1, "name": m.name, "distance": round(m.distance, 3), "nearest": m.nearest,
                     **box_fields(r)} for i, (m, r) in enumerate(zip(matches, faces.detections.to_records()))]
            results.append(({"model": self.model, "faces": len(faces)}, rows))
        return results


def _known(models: dict[str, Any], name: str, what: str) -> Any:
    try:
        return models[name]
    except KeyError:
        raise ValueError(f"No {what} called {name!r}; choose one of {', '.join(models)}") from None


TASKS: dict[str, Callable[..., Task]] = {"classify": Classify, "faces": Faces, "recognize": Recognize,
                                         "objects": Objects, "embed": Embed}
"""Each subcommand's task (``classify --project`` is :class:`ProjectClassify`)."""
