"""What each API call computes, in a worker thread: the batch command's tasks on the registry's shared engines.

A call's answer is the batch command's row for its photo (``--per photo``): the same task classes
(:mod:`vision_backend.batch.tasks`), the same settings checks and messages, boxes in the photo's own pixels.
Only the engines differ: batch lanes build one-thread engines of their own, while an API call runs on the
registry's one instance of each model, the very engine the pages use (called under the model's lock, or side
by side where the engine is ``concurrent``, as ONNX Runtime's are), so a page visit and an API call never load
a model twice. A person's projects and gallery are read from the key's workspace, never from a path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from vision_backend.api.inputs import read_photos, settings_in
from vision_backend.api.keys import Access
from vision_backend.batch import tasks
from vision_backend.errors import BadInput, NotFound, SettingError
from vision_backend.face_recognition import recognise
from vision_backend.model import Param

TOP = Param("top", "Labels kept", 5, 1, 20, 1, help="how many ImageNet labels each answer keeps")
RESERVED = ("model", "top", "detector")


@dataclass(frozen=True)
class Call:
    """One API call as the work sees it: who (the key's access), the query, the path's names and the body."""

    access: Access
    query: dict[str, str] = field(default_factory=dict)
    path: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = ""

    @property
    def settings(self) -> dict[str, str]:
        return settings_in(self.query, RESERVED)

    def photos(self, *fields: str) -> dict[str, tuple[str, np.ndarray]]:
        return read_photos(self.body, self.content_type, fields or ("photo",))


class SharedEngines:
    """A task on the registry's shared engines (the pages'), not a lane's own."""

    def engine(self, model: Any, variant: Any = None) -> Any:
        return None


class Classify(SharedEngines, tasks.Classify):
    pass


class Faces(SharedEngines, tasks.Faces):
    pass


class Objects(SharedEngines, tasks.Objects):
    pass


class Embed(SharedEngines, tasks.Embed):
    pass


def row(task: tasks.Task, name: str, image: np.ndarray) -> dict[str, Any]:
    """The batch command's row (``--per photo``) for one photo, through the task's own steps."""
    task.per = "photo"
    photo = tasks.Photo(name, image, 1.0, (image.shape[1], image.shape[0]))
    photo.blob = task.prepare(photo)
    fields, detections = task.infer([photo])[0]
    return task.shape(name, fields, detections)[0]


def one_photo(make: Callable[[Call], tasks.Task]) -> Callable[[Call], dict[str, Any]]:
    """A call of one photo through the task ``make`` builds (settings checked before the photo is decoded)."""
    def work(call: Call) -> dict[str, Any]:
        task = make(call).resolve([])
        name, image = call.photos()["photo"]
        return row(task, name, image)

    work.__doc__ = make.__doc__
    return work


@one_photo
def classify(call: Call) -> tasks.Task:
    """ImageNet's top labels (the pages' default classifier unless ``model`` names another)."""
    top = TOP.coerce(call.query.get("top", TOP.default))
    return Classify(call.query.get("model"), top=top, settings=call.settings)


@one_photo
def faces(call: Call) -> tasks.Task:
    """Every face a face detector finds."""
    return Faces(call.query.get("model"), settings=call.settings)


@one_photo
def objects(call: Call) -> tasks.Task:
    """Every COCO object an object detector finds (masks as COCO RLE for segmenting models)."""
    return Objects(call.query.get("model"), settings=call.settings)


@one_photo
def embed(call: Call) -> tasks.Task:
    """Every face (found by the face finder) and its unit embedding."""
    return Embed(call.query.get("model"), detector=call.query.get("detector"), settings=call.settings)


@one_photo
def recognize(call: Call) -> tasks.Task:
    """Every face named by the nearest face enrolled in the key's workspace gallery (or "unknown")."""
    return Recognize(call.access, call.query.get("model"), detector=call.query.get("detector"), settings=call.settings)


class Recognize(SharedEngines, tasks.Recognize):
    """The batch command's recognition, with the gallery of the key's workspace."""

    def __init__(self, access: Access, model: str | None = None, **common: Any):
        super().__init__(model, **common)
        self.space = access.workspace

    def resolve(self, photos: list[str]) -> "Recognize":
        tasks.Embed.resolve(self, photos)
        if self.space.has_gallery():
            self.names, self.enrolled = self.space.gallery().embeddings(self.embedder.name, self.embedder.dimensions)
        if not self.names:
            raise NotFound(f"Nobody is enrolled for {self.embedder.title} in this workspace: enrol people on the Face "
                           "recognition page or with POST /api/v1/gallery/{person} first.")
        return self


def verify(call: Call) -> dict[str, Any]:
    """Whether the largest face of each of two photos is the same person (the page's verification)."""
    task = Embed(call.query.get("model"), detector=call.query.get("detector"), settings=call.settings).resolve([])
    sides = {}
    for side, (name, image) in call.photos("photo_a", "photo_b").items():
        found = task.analysed(tasks.Photo(name, image))
        if not len(found):
            raise BadInput(f"No face found in “{name}”.")
        sides[side] = (name, found, recognise.largest_index(found.detections))
    (_, a, i), (_, b, j) = sides["photo_a"], sides["photo_b"]
    same, distance = recognise.verify(a.vectors[i], b.vectors[j], task.settings["threshold"])
    return {"model": task.model, "same": bool(same), "distance": round(distance, 3),
            "threshold": task.settings["threshold"],
            **{field: {"path": name, "faces": len(found), **tasks.box_fields(found.detections.to_records()[k])}
               for field, (name, found, k) in sides.items()}}


class ProjectPredict(tasks.ProjectClassify):
    """The batch command's ``classify --project``, on the newest model of a project in the key's workspace."""

    def __init__(self, access: Access, project: str):
        super().__init__(project)
        self.space = access.workspace

    def resolve(self, photos: list[str]) -> "ProjectPredict":
        newest = trained(self.space, self.model)
        self.stem, self.classes, self._saved = newest.stem, list(newest.meta["classes"]), newest
        return self


def trained(space: Any, name: str) -> Any:
    """The newest trained model of project ``name``, or :class:`NotFound` saying what to do."""
    if not space.has_project(name):
        raise NotFound(f"There is no project called “{name}” in this workspace.")
    newest = space.project(name, create=False).models.newest()
    if newest is None:
        raise NotFound(f"Project “{name}” has no trained model: train and keep one on the Transfer learning page "
                       "first.")
    return newest


def predict(call: Call) -> dict[str, Any]:
    """A project's own classes for a photo (its newest trained model, as ``classify --project``)."""
    task = ProjectPredict(call.access, call.path["name"]).resolve([])
    if call.query:
        raise SettingError(f"A project's model has no settings; drop ?{next(iter(call.query))}=…")
    name, image = call.photos()["photo"]
    return row(task, name, image)


def own_detector(call: Call) -> dict[str, Any]:
    """Your own objects: the newest detector trained in the key's workspace on the detection project ``name`` (the
    Your own objects page's), as ``objects --project`` answers; its settings (score_threshold...) as query
    parameters."""
    task = ProjectDetect(call.access, call.path["name"], call.settings).resolve([])
    name, image = call.photos()["photo"]
    return row(task, name, image)


class ProjectDetect(SharedEngines, tasks.ProjectObjects):
    """The batch command's ``objects --project``, on the key's workspace and the detector every page shares."""

    def __init__(self, access: Access, project: str, settings: dict[str, str]):
        super().__init__(project, settings=settings)
        self.space = access.workspace

    def resolve(self, photos: list[str]) -> "ProjectDetect":
        if not self.space.has_detection_project(self.model):
            raise NotFound(f"This workspace has no detector called “{self.model}”: make a detection project of that "
                           "name on the Your own objects page, draw boxes and train a detector there (or python -m "
                           f"vision_backend detector import DIR --project \"{self.model}\", then detector train).")
        self._detector = self.space.detection_project(self.model, create=False).detector()
        self.settings = self._detector.settings(self.overrides)
        self.stem = self._detector.name.rpartition("/")[2]
        return self
