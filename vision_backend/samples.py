"""Built-in photos, so every demo works before anyone uploads anything.

scikit-image ships a few real photos (CC0 / public domain); the team's demo photos
(group shots, objects, a cat) are seeded into the Keras cache by the registry and listed
here when present.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from vision_backend.cards import AssetFile, ModelCard
from vision_backend.intake import read_image_file

PHOTOS = ModelCard(
    name="photos", title="Demo photos (faces, groups, objects)", task="photos", kind="dataset", seedable=True,
    files=(AssetFile("datasets/vision_lab/photos", is_tree=True),),
    licence="see ../shared/MANIFEST.md (press photos: testing only)",
)

_SKIMAGE = {
    "Astronaut (scikit-image)": "astronaut",
    "Cat, Chelsea (scikit-image)": "chelsea",
    "Coffee cup (scikit-image)": "coffee",
    "Rocket (scikit-image)": "rocket",
}
_PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}
NO_FACE_PHOTOS = ("no_face_eagle.jpg", "no_face_landscape_santorini.jpg")


def photos_dir() -> Path:
    return PHOTOS.files[0].local


def annotated_faces() -> dict[str, np.ndarray]:
    """The group photos whose faces were annotated by hand (dlib's annotations): photo name -> xyxy boxes."""
    truth = json.loads((photos_dir() / "face_boxes.json").read_text())
    return {name: np.asarray(entry["boxes_xyxy"], np.float64).reshape(-1, 4) for name, entry in truth.items()}


def sample_names() -> list[str]:
    """Every built-in photo, scikit-image's first (always there), then the seeded ones."""
    names = list(_SKIMAGE)
    folder = photos_dir()
    if folder.is_dir():
        names += sorted(p.name for p in folder.iterdir() if p.suffix.lower() in _PHOTO_SUFFIXES)
    return names


def load_sample(name: str) -> np.ndarray:
    """The sample photo ``name`` as an RGB uint8 array."""
    if name in _SKIMAGE:
        import skimage.data

        loader: Callable[[], np.ndarray] = getattr(skimage.data, _SKIMAGE[name])
        image = np.asarray(loader())
        return np.ascontiguousarray(image[..., :3]).astype(np.uint8)
    path = photos_dir() / name
    if path.parent != photos_dir() or not path.is_file():
        raise KeyError(f"no sample photo called {name!r}")
    return read_image_file(path)
