"""One task a subcommand: a small object that loads its models once and turns photos into rows.

A task is built where the command is typed: :meth:`Task.resolve` checks every name and setting
against the model's own :class:`~vision_backend.model.Param` list before a photo is read, and
gathers what lives with that machine (a gallery's embeddings, a project's trained model). It is
then sent as it is to wherever the work runs (this process, or each Ray actor), where
:meth:`Task.load` builds its engines once (fetching missing files into that node's cache first).
:meth:`Task.read` reads, decodes and preprocesses one photo (threads run it side by side);
:meth:`Task.infer` runs a batch of them through the model. The results are the pages': the very
same calls (``Detector.detect``, ``ImageNetClassifier.classify``, ``FaceEmbedder.embed``) on the same
model objects and settings; only the engines are the lanes' own: one lane a core, each with a
one-thread engine of its own (``Model.worker_engine``), batches where the graph takes them (see
:meth:`Task.open_lanes`). Defaults are the pages' (each model's ``roles``).

A photo that cannot be read or decoded, or that breaks the model, becomes a row with an ``error``
(intake's message, never a traceback) and the run goes on.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vision_backend import fetch
from vision_backend.batch.decode import decode, read_bytes
from vision_backend.cards import ModelCard
from vision_backend.detections import Detections
from vision_backend.errors import BadInput, NotFound, SettingError, UserError
from vision_backend.model import Model

DRAFT_MARGIN = 2
"""A draft-decoded photo keeps at least this many times the pixels a model works at (see ``decode``)."""


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
    note: str = ""


Result = tuple[dict[str, Any], list[dict[str, Any]]]
"""What a task finds in one photo: the photo's own fields, and one dict per detection."""


def ensure_ready(card: ModelCard) -> None:
    """The card's files fetched into this node's cache on first use, or one line saying how to get them."""
    if not card.ready():
        outcome = fetch.ensure(card)
        if not outcome.ok:
            raise fetch.FetchError(f"{card.title}: {outcome.message}")
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
        """Check names and settings (a :class:`UserError` with a readable message) before any work."""
        return self

    def photo_columns(self) -> list[Column]:
        return []

    def detection_columns(self) -> list[Column]:
        return []

    def columns(self) -> list[Column]:
        """Every column a row can have, in order: ``path`` first, ``note`` (which frame of an animation was used)
        and ``error`` last."""
        detections = self.detection_columns()
        if detections:
            detections = detections if self.per == "detection" else [Column("detections", "json")]
        return [Column("path"), *self.photo_columns(), *detections, Column("note"), Column("error")]

    # ---- where the work runs -------------------------------------------------------------------
    def load(self) -> None:
        """Build the engines once in this process."""

    def engine_threads(self) -> int:
        return self.threads or cores()

    def engine(self, model: Model, variant: Any = None) -> Any:
        """This lane's own engine for ``model``, built once per lane thread (None where the model keeps one
        engine per process: calls then share it under its lock). One thread each, or every core with
        ``spinning`` (one lane)."""
        built = self._local.__dict__.setdefault("engines", {})
        if (model.name, variant) not in built:
            threads = self.engine_threads() if self.spinning else 1
            built[model.name, variant] = model.worker_engine(variant, threads)
        return built[model.name, variant]

    @property
    def lanes(self) -> int:
        return 1 if self.spinning else self.engine_threads()

    def open_lanes(self) -> None:
        """One lane a core: photos (or parts of a batch) run side by side, each on an engine with one
        thread. On 2 cores, with photos decoded beside them, this beat one run on both cores with
        spinning on by 1.7x for NanoDet, 2x for YuNet and 1.15x for MobileNetV2 batches: spinning
        threads take the cores the decoding needs, and a small network's layers are too short for two
        threads to share without waiting on each other. A graph's run alone is as fast either way."""
        self._local = threading.local()
        self._lanes = ThreadPoolExecutor(self.lanes, thread_name_prefix=self.name) if self.lanes > 1 else None

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
            photo = Photo(path, decoded.image, decoded.scale, (decoded.width, decoded.height), note=decoded.note)
            photo.blob = self.prepare(photo)
            return photo
        except UserError as error:
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
            shaped = [{"path": photo.path, "error": outcome}] if isinstance(outcome, str) else \
                self.shape(photo.path, *outcome)
            rows += [{**row, "note": photo.note} for row in shaped] if photo.note else shaped
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
    """An ImageNet classifier (the page's default): top-k labels per photo, a batch a lane on its own engine."""

    name = "classify"
    tally = "label"

    def __init__(self, model: str | None = None, top: int = 5, **common: Any):
        super().__init__(model or _default("classify").name, **common)
        self.top = top

    @property
    def classifier(self) -> Any:
        from vision_backend.classification import CLASSIFIERS

        return _known(CLASSIFIERS, self.model, "ImageNet classifier")

    def resolve(self, photos: list[str]) -> "Classify":
        self.settings = self.classifier.settings(self.overrides)
        return self

    def photo_columns(self) -> list[Column]:
        return [Column("model"), Column("label"), Column("id"), Column("probability", "float"), Column("top", "json")]

    def load(self) -> None:
        ensure_ready(self.classifier.card)
        self.open_lanes()
        self.engine(self.classifier, self.classifier.batch_engine)  # a first load (a conversion) before the lanes'

    def wanted(self, width: int, height: int) -> tuple[int, int] | None:
        size = self.classifier.size * DRAFT_MARGIN
        return (size, size) if self.classifier.area_resize else None

    def prepare(self, photo: Photo) -> np.ndarray:
        return self.classifier.preprocess([photo.image])[0]

    def infer(self, photos: list[Photo]) -> list[Result]:
        """The batch in one part a lane, each part one ``classify`` on the lane's own engine."""
        runs = self.each(self.classified, self.parts(photos))
        return [result for run in runs for result in run]

    def classified(self, part: list[Photo]) -> list[Result]:
        runner = self.engine(self.classifier, self.classifier.batch_engine)
        predictions = self.classifier.classify([p.image for p in part], self.classifier.batch_engine, self.top, runner,
                                               prepared=np.stack([p.blob for p in part]))
        return [({"model": self.model, "label": p.top[0][1], "id": p.top[0][0], "probability": round(p.top[0][2], 4),
                  "top": [{"label": label, "id": wnid, "probability": round(q, 4)} for wnid, label, q in p.top]}, [])
                for p in predictions]


class ProjectClassify(Task):
    """The newest model trained on the transfer-learning page for a project: raw 0-255 RGB in, its classes out."""

    name = "classify"
    tally = "label"

    def __init__(self, project: str, home: str | None = None, **common: Any):
        super().__init__(project, **common)
        self.home = home
        self.stem, self.classes, self.weights = "", [], b""

    def resolve(self, photos: list[str]) -> "ProjectClassify":
        space = workspace_at(self.home)
        if not space.has_project(self.model):
            raise NotFound(f"There is no project called “{self.model}” in {space.where}.")
        newest = space.project(self.model, create=False).models.newest()
        if newest is None:
            raise NotFound(f"Project “{self.model}” has no trained model: train and keep one on the "
                           "transfer-learning page first.")
        self.stem, self.classes = newest.stem, list(newest.meta["classes"])
        self.weights = newest.read()  # travels with the task: a cluster's nodes need not see the workspace
        return self

    def photo_columns(self) -> list[Column]:
        return [Column("model"), Column("label"), Column("probability", "float"), Column("probabilities", "json")]

    def load(self) -> None:
        """The model's bytes kept on this node by their key, then loaded once as every saved model is."""
        from vision_backend import paths
        from vision_backend.storage import FolderBlobs, SavedModel
        from vision_backend.transfer.export import loaded

        blobs = FolderBlobs(paths.app_dir("derived", "batch_models"), ".keras")
        self._saved = SavedModel(self.stem, blobs.put(self.weights), {"classes": self.classes}, 0.0, blobs)
        self._size = int(loaded(self._saved)[0].inputs[0].shape[1])

    def wanted(self, width: int, height: int) -> tuple[int, int]:
        size = self._size * DRAFT_MARGIN
        return size, size

    def infer(self, photos: list[Photo]) -> list[Result]:
        from vision_backend.transfer.export import saved_probabilities

        probabilities = saved_probabilities(self._saved, [p.image for p in photos])
        return [({"model": f"{self.model}/{self.stem}", "label": self.classes[int(p.argmax())],
                  "probability": round(float(p.max()), 4),
                  "probabilities": {c: round(float(v), 4) for c, v in zip(self.classes, p)}}, [])
                for p in probabilities]


# ---- faces -----------------------------------------------------------------------------------------
class Faces(Task):
    """A face detector with the page's settings; ``blur`` writes anonymised copies into a folder."""

    name = "faces"
    count = "faces"

    def __init__(self, model: str | None = None, blur: str | None = None, pixelate: bool = False, **common: Any):
        super().__init__(model or _default("faces").name, **common)
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
        """A lane a core, each with its own engine, OpenCV on one thread a lane; a detector whose engine is one
        per process (MTCNN) runs without lanes, on every core."""
        import cv2

        ensure_ready(self.detector.card)
        if self.detector.per_worker and not self.spinning:
            cv2.setNumThreads(1)
            self.open_lanes()
        else:
            self._local, self._lanes = threading.local(), None

    def wanted(self, width: int, height: int) -> tuple[int, int] | None:
        """Drafted only where the detector shrinks to a working side anyway (YuNet) and never for an anonymised
        copy, which is written at the photo's own size."""
        return None if self.blur else _long_side(width, height, self.detector.working_side(self.settings))

    def infer(self, photos: list[Photo]) -> list[Result]:
        return self.each(self.faces, photos)

    def faces(self, photo: Photo) -> Result:
        variant = self.detector.variant(self.settings)
        found = self.detector.detect(photo.image, engine=self.engine(self.detector, variant), **self.settings)
        found = in_photo(found, photo)
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
        raise BadInput(f"“{Path(path).name}” would be written outside {folder}; refused")
    return target


# ---- objects ---------------------------------------------------------------------------------------
class Objects(Task):
    """An object detector: its own preprocessing on the decoding threads, then ``detect`` on a lane's engine."""

    name = "objects"
    count = "objects"
    tally = "label"

    def __init__(self, model: str | None = None, **common: Any):
        super().__init__(model or _default("objects").name, **common)

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
        ensure_ready(self.detector.card)
        self.open_lanes()

    def wanted(self, width: int, height: int) -> tuple[int, int] | None:
        return _long_side(width, height, self.detector.working_side(self.settings))

    def prepare(self, photo: Photo) -> Any:
        return self.detector.prepare(photo.image)

    def infer(self, photos: list[Photo]) -> list[Result]:
        return self.each(self.objects, photos)

    def objects(self, photo: Photo) -> Result:
        from vision_backend.object_detection.coco import to_coco

        variant = self.detector.variant(self.settings)
        found = self.detector.detect(photo.image, engine=self.engine(self.detector, variant), prepared=photo.blob,
                                     **self.settings)
        found = in_photo(found, photo)
        rows = []
        for i, (record, coco) in enumerate(zip(found.to_records(), to_coco(found, photo.path))):
            mask = {"mask": coco["segmentation"]} if "segmentation" in coco else {}
            rows.append({"object": i + 1, **box_fields(record, label=True), "category_id": coco["category_id"], **mask})
        return {"model": self.model, "objects": len(found)}, rows


class ProjectObjects(Task):
    """The newest detector trained on a detection project (the Your own objects page's): its own classes' boxes."""

    name = "objects"
    count = "objects"
    tally = "label"

    def __init__(self, project: str, home: str | None = None, **common: Any):
        super().__init__(project, **common)
        self.home = home
        self.stem, self.graph, self.meta = "", b"", {}

    def resolve(self, photos: list[str]) -> "ProjectObjects":
        space = workspace_at(self.home)
        if not space.has_detection_project(self.model):
            raise NotFound(f"There is no detection project called “{self.model}” in {space.where}.")
        detector = space.detection_project(self.model, create=False).detector()
        self.settings = detector.settings(self.overrides)
        self.stem, self.meta = detector.name.rpartition("/")[2], detector.meta
        self.graph = detector.graph  # travels with the task: a cluster's nodes need not see the workspace
        return self

    def photo_columns(self) -> list[Column]:
        return [Column("model"), Column("objects", "int")]

    def detection_columns(self) -> list[Column]:
        return [Column("object", "int"), Column("label"), *BOX_COLUMNS]

    @property
    def detector(self) -> Any:
        """The saved detector as a model object, built once in this process (on a cluster's node too)."""
        if getattr(self, "_detector", None) is None:
            from vision_backend.own_detection.detector import detector_from_saved

            self._detector = detector_from_saved(self.graph, self.meta, f"{self.model}/{self.stem}")
        return self._detector

    def load(self) -> None:
        self.open_lanes()

    def prepare(self, photo: Photo) -> Any:
        return self.detector.prepare(photo.image)

    def infer(self, photos: list[Photo]) -> list[Result]:
        return self.each(self.objects, photos)

    def objects(self, photo: Photo) -> Result:
        found = self.detector.detect(photo.image, engine=self.engine(self.detector), prepared=photo.blob,
                                     **self.settings)
        found = in_photo(found, photo)
        rows = [{"object": i + 1, **box_fields(record, label=True)} for i, record in enumerate(found.to_records())]
        return {"model": f"{self.model}/{self.stem}", "objects": len(found)}, rows


# ---- recognize and embed ---------------------------------------------------------------------------
class Embed(Task):
    """Every face found (by the face finder, as on the recognition page) and its unit embedding."""

    name = "embed"
    count = "faces"

    def __init__(self, model: str | None = None, detector: str | None = None, **common: Any):
        from vision_backend.face_recognition.recognise import face_finder

        super().__init__(model or _default("embed").name, **common)
        self.finder = detector or face_finder()
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
        self.open_lanes()

    def analysed(self, photo: Photo) -> Any:
        """The page's ``analyse`` (find, then embed) on this lane's own engines."""
        from vision_backend.face_recognition.recognise import analyse

        engines = (self.engine(self.detector, self.detector.variant(self.finder_settings)), self.engine(self.embedder))
        return analyse(self.embedder, photo.image, self.finder, engines, **self.finder_settings)

    def infer(self, photos: list[Photo]) -> list[Result]:
        return self.each(self.embedded, photos)

    def embedded(self, photo: Photo) -> Result:
        faces = self.analysed(photo)
        rows = [{"face": i + 1, **box_fields(r), "embedding": [float(v) for v in vector]}
                for i, (r, vector) in enumerate(zip(faces.detections.to_records(), faces.vectors))]
        return {"model": self.model, "faces": len(faces)}, rows


class Recognize(Embed):
    """Every face named by the nearest face enrolled in a workspace's gallery (or "unknown")."""

    name = "recognize"
    tally = "name"

    def __init__(self, model: str | None = None, home: str | None = None, **common: Any):
        super().__init__(model, **common)
        self.home = home
        self.names: list[str] = []
        self.enrolled = np.zeros((0, 0), np.float32)

    def resolve(self, photos: list[str]) -> "Recognize":
        """The gallery read here, once: its embeddings travel with the task, the workspace stays put."""
        super().resolve(photos)
        space = workspace_at(self.home)
        if not space.has_gallery():
            raise NotFound(f"There is no face gallery in {space.where}: enrol people on the face recognition page "
                           "first.")
        self.names, self.enrolled = space.gallery().embeddings(self.embedder.name, self.embedder.dimensions)
        if not self.names:
            raise NotFound(f"Nobody is enrolled for {self.embedder.title} in {space.where}: enrol people on the face "
                           "recognition page first.")
        return self

    def detection_columns(self) -> list[Column]:
        return [Column("face", "int"), Column("name"), Column("verdict"), Column("distance", "float"),
                Column("nearest"), *BOX_COLUMNS]

    def embedded(self, photo: Photo) -> Result:
        from vision_backend.face_recognition.recognise import recognise_faces

        faces = self.analysed(photo)
        matches = recognise_faces(faces, self.names, self.enrolled, self.settings)
        rows = [{"face": i + 1, "name": m.name, "verdict": m.verdict, "distance": round(m.distance, 3),
                 "nearest": m.nearest, **box_fields(r)}
                for i, (m, r) in enumerate(zip(matches, faces.detections.to_records()))]
        return {"model": self.model, "faces": len(faces)}, rows


def workspace_at(home: str | None) -> Any:
    """The workspace ``--home`` names (a folder), or this machine's configured one."""
    from vision_backend.workspace import Workspace

    return Workspace.at(Path(home).expanduser()) if home else Workspace.local()


def _known(models: dict[str, Any], name: str, what: str) -> Any:
    if name not in models:
        raise SettingError(f"No {what} called {name!r}; choose one of {', '.join(models)}")
    return models[name]


def _default(role: str) -> Model:
    from vision_backend import models

    return models.default(role)


TASKS: dict[str, Callable[..., Task]] = {"classify": Classify, "faces": Faces, "recognize": Recognize,
                                         "objects": Objects, "embed": Embed}
"""Each subcommand's task (``classify --project`` is :class:`ProjectClassify`, ``objects --project``
:class:`ProjectObjects`)."""
