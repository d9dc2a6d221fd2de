"""Built-in photos, so every demo works before anyone uploads anything.

scikit-image ships a few real photos (CC0 / public domain); the demo photos (group shots with
hand-annotated faces, press photos for recognition, objects) are a data set of their own, seeded
from the team's folder or fetched on first use from their public addresses. Each sample has a key
(what code and tests use) and a title (what people see), all titles in one style.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from vision_backend.cards import AssetFile, ModelCard
from vision_backend.intake import read_image_file

DLIB_FACES = "https://raw.githubusercontent.com/davisking/dlib/master/examples/faces/"
AGEITGEY = "https://raw.githubusercontent.com/ageitgey/face_recognition/master/examples/"
DARKNET = "https://raw.githubusercontent.com/pjreddie/darknet/master/data/"
DLIB_IMAGES = {"group_3faces.jpg": "2008_002506.jpg", "group_7faces_elvis.jpg": "2008_004176.jpg",
               "group_7faces_family.jpg": "2007_007763.jpg"}
"""The group photos' names in dlib's examples/faces, where their faces were annotated."""
PHOTO_SOURCES = {
    **{name: DLIB_FACES + original for name, original in DLIB_IMAGES.items()}, "obama_1.jpg": AGEITGEY + "obama.jpg",
    "obama_2.jpg": AGEITGEY + "obama2.jpg", "biden.jpg": AGEITGEY + "biden.jpg",
    "two_people.jpg": AGEITGEY + "two_people.jpg", "no_face_eagle.jpg": DARKNET + "eagle.jpg",
    "dog_bicycle_truck.jpg": DARKNET + "dog.jpg", "person_horse_dog.jpg": DARKNET + "person.jpg",
}
"""Each demo photo's public address (its bytes are checked against the manifest when fetched)."""

FACE_BOXES = {  # dlib's own annotations (examples/faces/testing.xml, training.xml) as xyxy pixels
    "group_3faces.jpg": [[329, 78, 438, 187], [224, 95, 315, 186], [125, 65, 215, 156]],
    "group_7faces_elvis.jpg": [[206, 230, 243, 267], [162, 118, 199, 155], [190, 82, 227, 119],
                               [326, 78, 363, 115], [222, 98, 259, 135], [110, 86, 147, 123], [282, 102, 319, 139]],
    "group_7faces_family.jpg": [[194, 90, 231, 127], [158, 114, 195, 151], [381, 89, 426, 133], [94, 198, 131, 235],
                                [178, 214, 215, 251], [294, 86, 331, 123], [309, 233, 354, 277]],
}
"""The 17 hand-annotated faces of the three group photos: what face detection is measured against."""


def build_photos(folder: Path, download: Callable[..., Path]) -> None:
    """The demo photos from their public addresses, the cat from scikit-image, the annotations from code."""
    import skimage

    for name, url in PHOTO_SOURCES.items():
        download(url, name)
    shutil.copyfile(Path(skimage.__file__).parent / "data" / "chelsea.png", folder / "cat_chelsea.png")
    sources = {name: {"boxes_xyxy": boxes, "source": "dlib examples/faces (testing.xml or training.xml), image "
                      + DLIB_IMAGES[name]} for name, boxes in FACE_BOXES.items()}
    (folder / "face_boxes.json").write_text(json.dumps(sources, indent=1) + "\n")


PHOTOS = ModelCard(
    name="photos", title="Demo photos (faces, groups, objects)", task="photos", kind="dataset", seedable=True,
    files=(AssetFile("datasets/vision_lab/photos", is_tree=True, build=build_photos, size=1_988_103,
                     optional=("no_face_landscape_santorini.jpg",)),),
    licence="dlib examples (Boost), ageitgey/face_recognition (MIT; press photos: testing only), "
            "darknet data (public domain), scikit-image (CC0)",
    note="The Santorini landscape has no public address; it comes with the team's shared folder.",
)

SKIMAGE = {"Astronaut (scikit-image)": "astronaut", "Cat, Chelsea (scikit-image)": "chelsea",
           "Coffee cup (scikit-image)": "coffee", "Rocket (scikit-image)": "rocket"}
TITLES = {
    "Astronaut (scikit-image)": "Astronaut in a space suit", "Cat, Chelsea (scikit-image)": "Cat (Chelsea)",
    "Coffee cup (scikit-image)": "Coffee cup on a saucer", "Rocket (scikit-image)": "Rocket on the launch pad",
    "two_people.jpg": "Obama and Biden in suits", "group_3faces.jpg": "Three people at a party",
    "group_7faces_family.jpg": "A family of seven", "group_7faces_elvis.jpg": "Seven friends",
    "obama_1.jpg": "Barack Obama", "obama_2.jpg": "Barack Obama, another photo", "biden.jpg": "Joe Biden",
    "dog_bicycle_truck.jpg": "Dog, bicycle and truck", "person_horse_dog.jpg": "Person, horse and dog",
    "no_face_eagle.jpg": "Eagle (no face)", "no_face_landscape_santorini.jpg": "Santorini (no face)",
}
"""What people see in the photo picker; the keys stay what code and tests use."""
PICKER_ORDER = ("two_people.jpg", "group_3faces.jpg", "group_7faces_family.jpg", "group_7faces_elvis.jpg",
                "dog_bicycle_truck.jpg", "person_horse_dog.jpg", "obama_1.jpg", "obama_2.jpg", "biden.jpg",
                "no_face_eagle.jpg", "no_face_landscape_santorini.jpg")
DEFAULT_SAMPLE = "two_people.jpg"
"""The first photo: two faces every detector finds, two people and two ties for COCO, suits for ImageNet,
and the two demo people recognition enrols. The astronaut stands in until the demo photos are here."""
FALLBACK_SAMPLE = "Astronaut (scikit-image)"
NO_FACE_PHOTOS = ("no_face_eagle.jpg", "no_face_landscape_santorini.jpg")


def photos_dir() -> Path:
    return PHOTOS.files[0].local


def annotated_faces() -> dict[str, np.ndarray]:
    """The group photos whose faces were annotated by hand (dlib's annotations): photo name -> xyxy boxes."""
    PHOTOS.require()
    return {name: np.asarray(boxes, np.float64).reshape(-1, 4) for name, boxes in FACE_BOXES.items()}


def no_face_photos() -> list[str]:
    """The photos with no face that are here (one of them only comes with the shared folder)."""
    return [name for name in NO_FACE_PHOTOS if (photos_dir() / name).is_file()]


def sample_names() -> list[str]:
    """Every built-in photo for the picker, the demo photos first when they are here; no photo twice
    (cat_chelsea.png is scikit-image's Chelsea)."""
    folder = photos_dir()
    seeded = [n for n in PICKER_ORDER if (folder / n).is_file()] if folder.is_dir() else []
    return seeded + list(SKIMAGE)


def default_sample() -> str:
    return DEFAULT_SAMPLE if (photos_dir() / DEFAULT_SAMPLE).is_file() else FALLBACK_SAMPLE


def title(name: str) -> str:
    """The photo's title for people (its key when it has none)."""
    return TITLES.get(name, name)


def load_sample(name: str) -> np.ndarray:
    """The sample photo ``name`` as an RGB uint8 array."""
    if name in SKIMAGE:
        import skimage.data

        loader: Callable[[], np.ndarray] = getattr(skimage.data, SKIMAGE[name])
        image = np.asarray(loader())
        return np.ascontiguousarray(image[..., :3]).astype(np.uint8)
    path = photos_dir() / name
    if path.parent != photos_dir() or not path.is_file():
        raise KeyError(f"no sample photo called {name!r}")
    return read_image_file(path)
