"""The tracking settings a person chooses for a video or a camera, as data (``Param``), with their defaults.

They are the tracker's own settings (:data:`vision_backend.tracking.PARAMS`) plus the point of each box that is
counted (``anchor``). Two defaults differ from the tracker's, for the footage a
counting demo usually has, a fixed camera looking down on a road or a floor:

- ``class_aware`` is off: a small detector's class flickers on one object seen from above (NanoDet-m calls one car
  "car", "bus" and "cell phone" in turn), and a class-aware tracker would start a new track at every flicker;
  each track's label is then its boxes' vote.
- ``anchor`` is the box centre: from above, a box's bottom edge is no nearer the ground than its middle, and the
  centre jitters least. For a camera looking across a scene (people walking past), choose the bottom centre,
  where feet meet the floor.

The Video page, the live camera and ``python -m vision_backend track`` (``--set``) all take them from here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vision_backend.errors import SettingError
from vision_backend.model import Param
from vision_backend.tracking import ANCHORS, ByteTrack
from vision_backend.tracking import PARAMS as TRACKER_PARAMS

CLASS_AWARE_HELP = ("Off (the default here): a track takes boxes of any class and is labelled by vote, because "
                    "a detector's class flickers on an object seen from above. On: a car's track never takes a "
                    "person's box (busy scenes seen from the side).")
ANCHOR = Param("anchor", "Point of a box that is counted", "center", options=ANCHORS,
               option_labels=(("center", "centre (camera looking down)"),
                              ("bottom_center", "bottom centre (camera looking across)")),
               help="The point that must cross the line or be inside a zone. From above, the centre; for a "
                    "camera looking across a scene, the bottom centre, where feet and wheels meet the ground.")
PARAMS: tuple[Param, ...] = (
    *(replace(p, default=False, help=CLASS_AWARE_HELP) if p.name == "class_aware" else p for p in TRACKER_PARAMS),
    ANCHOR)
"""Every tracking setting, the tracker's first."""
TRACKER_NAMES = frozenset(p.name for p in TRACKER_PARAMS)


def defaults() -> dict[str, Any]:
    return {p.name: p.default for p in PARAMS}


def chosen(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The defaults with ``overrides`` applied, each checked against its :class:`Param`."""
    known = {p.name: p for p in PARAMS}
    values = defaults()
    for name, value in (overrides or {}).items():
        if name not in known:
            raise SettingError(f"tracking has no setting {name!r}; it has {', '.join(known)}")
        values[name] = known[name].coerce(value)
    return values


def tracker(values: dict[str, Any]) -> ByteTrack:
    """A fresh tracker with the tracker's share of ``values`` (as :func:`chosen` gives them)."""
    return ByteTrack.from_settings({k: v for k, v in values.items() if k in TRACKER_NAMES})


def split(detector: Any, overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set`` pairs shared out: the tracking settings' (checked here), the rest the detector's (checked by
    it); a name neither knows is refused with both lists."""
    mine = {k: v for k, v in overrides.items() if k in {p.name for p in PARAMS}}
    theirs = {k: v for k, v in overrides.items() if k not in mine}
    unknown = [k for k in theirs if k not in detector.defaults()]
    if unknown:
        raise SettingError(f"no setting {unknown[0]!r}: {detector.title} has {', '.join(detector.defaults())}; "
                           f"tracking has {', '.join(p.name for p in PARAMS)}")
    return chosen(mine), detector.settings(theirs)
