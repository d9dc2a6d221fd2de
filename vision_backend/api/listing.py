"""What a key can list and change besides photos: the model cards, its workspace's projects and its gallery.

The cards are the registry's (every registered model, its settings as its own :class:`Param` list says them,
and which call takes it as ``model``), so a model added to the registry is in the API's answer and in its
OpenAPI document at once. Projects and the gallery are the key's workspace's; changing the gallery needs a
read-write key.
"""

from __future__ import annotations

from typing import Any

from vision_backend import models
from vision_backend.api.inputs import photo_bytes
from vision_backend.api.work import Call
from vision_backend.errors import BadInput, NotFound, SettingError
from vision_backend.face_recognition import recognise
from vision_backend.model import Model, Param

CALLS = {"classifier": ["classify"], "face detector": ["faces", "embed (detector)", "recognize (detector)",
                                                      "verify (detector)"],
         "embedder": ["embed", "recognize", "verify", "gallery"], "object detector": ["objects"], "base": []}
"""Which calls take a model of each registry group as ``model`` (or as ``detector``)."""


def setting(param: Param) -> dict[str, Any]:
    """A :class:`Param` as JSON: what it is called, takes and starts at."""
    described = {"name": param.name, "label": param.label, "kind": param.kind, "default": param.default}
    if param.kind in ("int", "float"):
        described.update(low=param.low, high=param.high, step=param.step)
    if param.options:
        described["options"] = list(param.options)
    if param.help:
        described["help"] = param.help
    return described


def card(model: Model) -> dict[str, Any]:
    c = model.card
    return {"name": model.name, "title": model.title, "group": model.group, "task": c.task, "roles": list(model.roles),
            "calls": CALLS.get(model.group, []), "ready": model.ready(), "licence": c.licence, "input": c.input,
            "parameters": c.params, "accuracy": c.accuracy, "settings": [setting(p) for p in model.params],
            "get_it_with": "" if model.ready() else c.how_to_get()}


def cards(call: Call) -> dict[str, Any]:
    """Every registered model's card (ready or not, and how to get it)."""
    return {"models": [card(m) for m in models.all_models().values()]}


def projects(call: Call) -> dict[str, Any]:
    """The key's workspace's projects, each with its newest trained model's name and classes (or none yet)."""
    space, found = call.access.workspace, []
    for name in space.projects():
        newest = space.project(name, create=False).models.newest()
        found.append({"name": name, "model": newest.stem if newest else None,
                      "classes": list(newest.meta.get("classes", [])) if newest else [],
                      "trained": newest.saved if newest else None})
    return {"projects": found}


def gallery(call: Call) -> dict[str, Any]:
    """Everyone enrolled in the key's workspace, with how many faces each has."""
    space = call.access.workspace
    people = space.gallery().people() if space.has_gallery() else []
    return {"people": [{"name": p["name"], "faces": p["faces"]} for p in people]}


def embedder(call: Call) -> Any:
    name = call.query.get("model") or models.default("embed").name
    found = models.GROUPS["embedder"].get(name)
    if found is None:
        raise SettingError(f"No face recogniser called {name!r}; choose one of {', '.join(models.GROUPS['embedder'])}")
    if set(call.query) - {"model"}:
        raise SettingError(f"Enrolling takes only ?model=…, not ?{sorted(set(call.query) - {'model'})[0]}=…")
    return found


def enrol(call: Call) -> dict[str, Any]:
    """One photo of a person enrolled (its one face), as the gallery page enrols an upload."""
    chosen = embedder(call)
    files = list(photo_bytes(call.body, call.content_type, ("photo",)).values())
    report = recognise.enrol_photos(call.access.workspace.gallery(), chosen, call.path["person"], files)[0]
    if report["result"] == "skipped":
        error = BadInput(report["reason"])
        error.fields = {"path": report["photo"]}  # type: ignore[attr-defined]
        raise error
    return {"person": call.path["person"], "path": report["photo"], "model": chosen.name, "result": report["result"]}


def forget(call: Call) -> dict[str, Any]:
    """A person and all their faces deleted from the key's workspace gallery."""
    space, person = call.access.workspace, call.path["person"]
    found = [p for p in (space.gallery().people() if space.has_gallery() else []) if p["name"] == person]
    if not found:
        raise NotFound(f"Nobody called “{person}” is enrolled in this workspace.")
    space.gallery().delete_person(found[0]["id"])
    return {"deleted": person}
