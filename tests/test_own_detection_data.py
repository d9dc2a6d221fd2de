"""The data side of "train a detector on your own boxes": VOC / COCO / YOLO / CSV in and out, on the real raccoon
set and on a hostile one, EXIF orientation, and COCO-style AP checked by hand and against pycocotools."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from conftest import require_shared
from vision_backend import intake
from vision_backend.detections import Detections
from vision_backend.errors import AnnotationError, InvalidName
from vision_backend.own_detection import (LabelledPhoto, export, read_annotations, read_coco, read_csv, read_voc,
                                          read_yolo, stored_to_upright, write_coco, write_voc, write_yolo)
from vision_backend.own_detection.evaluate import RECALL_POINTS, evaluate
from vision_backend.storage import check_name


# ---- helpers -----------------------------------------------------------------------------------------
def photo_bytes(width: int, height: int, fmt: str = "JPEG", orientation: int = 1, mode: str = "RGB",
                block: tuple[int, int, int, int] | None = None) -> bytes:
    """A dark photo (with a bright ``block`` x1, y1, x2, y2 in stored pixels), optionally EXIF-tagged."""
    pixels = np.full((height, width, len(mode)), 30, np.uint8)
    if block:
        x1, y1, x2, y2 = block
        pixels[y1:y2, x1:x2] = 250
    if mode == "RGBA":
        pixels[..., 3] = 128
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    Image.fromarray(pixels, mode).save(buffer, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def voc_xml(filename: str, size: tuple[int, int], objects: list[tuple[str, float, float, float, float]]) -> str:
    parts = [f"<annotation><folder>images</folder><filename>{filename}</filename>"
             f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"]
    for name, x1, y1, x2, y2 in objects:
        parts.append(f"<object><name>{name}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                     f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")
    return "".join(parts) + "</annotation>"


def reasons(aset) -> str:
    return "\n".join(str(item) for item in (*aset.skipped, *aset.notes))


def by_name(aset) -> dict[str, LabelledPhoto]:
    return {photo.name: photo for photo in aset.photos}


def raccoon_xml_boxes(folder: Path) -> dict[str, list[list[int]]]:
    """The raccoon set's boxes read straight from its XML, independently of the reader under test."""
    boxes = {}
    for path in sorted((folder / "annotations").glob("*.xml")):
        root = ET.parse(path).getroot()
        boxes[root.findtext("filename")] = [[int(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")]
                                            for o in root.findall("object")]
    return boxes


RACCOON = "data/detection/raccoon"


# ---- the real raccoon set ----------------------------------------------------------------------------
def test_raccoon_reads_all_200_photos_and_217_boxes_exactly() -> None:
    folder = require_shared() / RACCOON
    aset = read_annotations(folder)
    assert aset.format == "voc" and aset.classes == ("raccoon",)
    assert len(aset.photos) == 200 and aset.boxes == 217 and aset.skipped == ()
    expected = raccoon_xml_boxes(folder)
    for photo in aset.photos:
        assert photo.boxes.tolist() == expected[photo.name], photo.name
        with Image.open(folder / "images" / photo.name) as image:
            assert (photo.width, photo.height) == image.size
        assert intake.read_image(photo.data).shape[:2] == (photo.height, photo.width)
    greys = [p for p in aset.photos if p.name in ("raccoon-150.jpg", "raccoon-152.jpg", "raccoon-161.jpg")]
    assert len(greys) == 3 and all(len(p.boxes) for p in greys)
    assert any(".csv" in note.name for note in aset.notes), "the unread split CSVs are mentioned"


def test_raccoon_split_csvs_are_the_authors_160_and_40_photos() -> None:
    folder = require_shared() / RACCOON
    train, test = read_csv(folder / "train_labels.csv"), read_csv(folder / "test_labels.csv")
    assert (len(train.photos), train.boxes, len(test.photos), test.boxes) == (160, 173, 40, 44)
    assert not {p.name for p in train.photos} & {p.name for p in test.photos}
    expected = raccoon_xml_boxes(folder)
    for photo in (*train.photos, *test.photos):
        assert sorted(photo.boxes.tolist()) == sorted(expected[photo.name]), photo.name
    assert [s.name for s in train.skipped] == ["40 photos"], "the other split's photos are left out in one line"


@pytest.mark.slow
def test_raccoon_round_trip_voc_coco_yolo_voc_keeps_every_box_to_the_pixel() -> None:
    folder = require_shared() / RACCOON
    voc = read_voc(folder)
    coco = read_coco(write_coco(voc.photos))
    yolo = read_yolo(write_yolo(coco.photos, coco.classes))
    back = read_voc(write_voc(yolo.photos))
    for aset in (coco, yolo, back):
        assert len(aset.photos) == 200 and aset.boxes == 217 and aset.skipped == () and aset.notes == ()
    first = by_name(voc)
    for middle in (coco, yolo):
        for photo in middle.photos:
            assert np.abs(photo.boxes - first[photo.name].boxes).max(initial=0) < 0.01, photo.name
    for photo in back.photos:
        original = first[photo.name]
        assert (photo.width, photo.height, photo.labels) == (original.width, original.height, original.labels)
        assert np.array_equal(photo.boxes, original.boxes), photo.name
        assert photo.data == original.data, "untagged photos are exported byte for byte"


# ---- a hostile Pascal VOC set --------------------------------------------------------------------------
def write_hostile_voc(folder: Path) -> None:
    images, notes = folder / "images", folder / "annotations"
    images.mkdir(parents=True)
    notes.mkdir()
    files = {
        "zero.jpg": (photo_bytes(64, 48), voc_xml("zero.jpg", (0, 0), [("cat", 5, 5, 30, 30)])),
        "wrong.jpg": (photo_bytes(80, 60), voc_xml("wrong.jpg", (800, 600), [("cat", 10, 10, 40, 40)])),
        "outside.jpg": (photo_bytes(80, 60), voc_xml("outside.jpg", (80, 60), [("cat", -10, 5, 200, 40)])),
        "flat.jpg": (photo_bytes(80, 60), voc_xml("flat.jpg", (80, 60), [("cat", 10, 10, 10, 30),
                                                                         ("cat", 100, 100, 120, 120),
                                                                         ("cat", 20, 20, 50, 50)])),
        "lonely.jpg": (photo_bytes(80, 60), voc_xml("lonely.jpg", (80, 60), [("lonely", 1, 2, 30, 40)])),
        "png.jpg": (photo_bytes(70, 50, "PNG"), voc_xml("png.jpg", (70, 50), [("cat", 10, 10, 60, 40)])),
        "clear.png": (photo_bytes(70, 50, "PNG", mode="RGBA"), voc_xml("clear.png", (70, 50), [("cat", 5, 5, 25, 25)])),
        "turned.jpg": (photo_bytes(90, 60, orientation=6), voc_xml("turned.jpg", (90, 60), [("cat", 0, 0, 30, 20)])),
        "badname.jpg": (photo_bytes(64, 64), voc_xml("badname.jpg", (64, 64), [("a/b", 1, 1, 20, 20),
                                                                              ("cat", 1, 1, 20, 20)])),
        "broken.jpg": (photo_bytes(64, 64)[:200], voc_xml("broken.jpg", (64, 64), [("cat", 1, 1, 20, 20)])),
    }
    for name, (data, xml) in files.items():
        (images / name).write_bytes(data)
        (notes / (Path(name).stem + ".xml")).write_text(xml)
    (notes / "ghost.xml").write_text(voc_xml("missing.jpg", (64, 64), [("cat", 1, 1, 20, 20)]))
    (notes / "malformed.xml").write_text("<annotation><filename>zero.jpg</filename><object>")
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
            + ']><annotation><filename>zero.jpg</filename><object><name>&lol9;</name></object></annotation>')
    (notes / "bomb.xml").write_text(bomb)
    (notes / "huge.xml").write_bytes(b"<annotation>" + b" " * (2 << 20) + b"</annotation>")
    (notes / "wide.xml").write_bytes(bomb.replace('version="1.0"', 'version="1.0" encoding="utf-16"').encode("utf-16"))


def test_a_hostile_voc_set_gives_a_reason_for_every_problem_and_keeps_the_rest(tmp_path: Path) -> None:
    write_hostile_voc(tmp_path)
    aset = read_annotations(tmp_path)
    photos, text = by_name(aset), reasons(aset)
    assert "zero.jpg: its annotation declares the size 0x0; the photo's real size 64x48 is used" in text
    assert "declares the size 800x600 but the photo is 80x60" in text
    assert photos["outside.jpg"].boxes.tolist() == [[0, 5, 80, 40]] and "clipped to (0, 5, 80, 40)" in text
    assert photos["flat.jpg"].boxes.tolist() == [[20, 20, 50, 50]]
    assert text.count("flat.xml, box") == 2 and "has no area" in text
    assert "class “lonely”: has 1 box: a detector cannot both learn it and be tested on it" in text
    assert "ghost.xml: names the photo “missing.jpg”, which is not in the set" in text
    assert "png.jpg: is a PNG file named .jpg" in text and photos["png.jpg"].boxes.tolist() == [[10, 10, 60, 40]]
    assert "clear.png: has transparency" in text and photos["clear.png"].width == 70
    assert "turned.jpg: carries an EXIF orientation (6" in text
    assert (photos["turned.jpg"].width, photos["turned.jpg"].height) == (60, 90)
    assert photos["turned.jpg"].boxes.tolist() == [[40, 0, 60, 30]], "a box on the stored pixels turns with the photo"
    with pytest.raises(InvalidName) as refused:
        check_name("a/b", "class name")
    assert f"badname.xml, box 1 (a/b): {refused.value}" in text
    assert photos["badname.jpg"].labels == ("cat",)
    assert "broken.xml:" in text and "could not be decoded" in text and "broken.jpg" not in photos
    assert "malformed.xml: is not well-formed XML" in text
    assert "bomb.xml: declares a DOCTYPE" in text and "huge.xml: is 2.0 MB; the limit" in text
    assert "wide.xml: is not UTF-8 text" in text
    assert len(aset.photos) == 9 and set(aset.classes) == {"cat", "lonely"}


def test_a_voc_file_naming_another_extension_finds_its_photo_by_name(tmp_path: Path) -> None:
    (tmp_path / "dog.jpg").write_bytes(photo_bytes(64, 64))
    (tmp_path / "dog.xml").write_text(voc_xml("C:\\Users\\me\\dog.png", (64, 64), [("dog", 1, 2, 30, 40)]))
    aset = read_voc(tmp_path)
    assert aset.photos[0].name == "dog.jpg" and "used “dog.jpg”" in reasons(aset)


def test_nothing_readable_is_one_annotation_error(tmp_path: Path) -> None:
    (tmp_path / "bad.xml").write_text("<annotation>")
    with pytest.raises(AnnotationError, match="Nothing could be read.*not well-formed"):
        read_annotations(tmp_path)
    with pytest.raises(AnnotationError, match="Found no annotation files"):
        read_annotations(photo_folder(tmp_path))
    with pytest.raises(AnnotationError, match="not a ZIP"):
        read_annotations(b"this is not a zip")
    with pytest.raises(AnnotationError, match="Found no YOLO .txt"):
        read_yolo(tmp_path)


def photo_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "only_photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(photo_bytes(40, 40))
    return folder


# ---- hostile COCO and YOLO ------------------------------------------------------------------------------
def test_a_hostile_coco_file_skips_each_bad_annotation_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(photo_bytes(100, 80))
    (tmp_path / "b.jpg").write_bytes(photo_bytes(50, 50))
    document = {"images": [{"id": 1, "file_name": "train/a.jpg", "width": 0, "height": 0},
                           {"id": 2, "file_name": "b.jpg", "width": 50, "height": 50},
                           {"id": 3, "file_name": "gone.jpg", "width": 9, "height": 9}],
                "categories": [{"id": 1, "name": "cup"}, {"id": 2, "name": "mug"}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40]},
                                {"id": 2, "image_id": 1, "category_id": 7, "bbox": [1, 1, 5, 5]},
                                {"id": 3, "image_id": 9, "category_id": 1, "bbox": [1, 1, 5, 5]},
                                {"id": 4, "image_id": 2, "category_id": 2, "bbox": [1, 1, 5]},
                                {"id": 5, "image_id": 2, "category_id": 2, "bbox": [1, 1, 5, 5], "iscrowd": 1},
                                {"id": 6, "image_id": 2, "category_id": 2, "bbox": [40, 40, 30, 30]},
                                {"id": 7, "image_id": [2], "category_id": {"x": 1}, "bbox": "no"}, "junk"]}
    (tmp_path / "instances.json").write_text(json.dumps(document))
    (tmp_path / "broken.json").write_text('{"images": [')
    aset = read_coco(tmp_path)
    photos, text = by_name(aset), reasons(aset)
    assert photos["a.jpg"].boxes.tolist() == [[10, 20, 40, 60]] and photos["a.jpg"].labels == ("cup",)
    assert "has category id 7, which is not among the file's categories (1, 2)" in text
    assert "is for image id 9, which the file does not list" in text
    assert "has no bbox of four numbers" in text and "iscrowd=1" in text
    assert "names the photo “gone.jpg”, which is not in the set" in text
    assert "declares the size 0x0" in text and "broken.json: is not JSON" in text
    assert "annotation 7: is for image id [2]" in text and "annotation 8: is not an object" in text
    assert photos["b.jpg"].boxes.tolist() == [[40, 40, 50, 50]] and "clipped to (40, 40, 50, 50)" in text
    assert aset.classes == ("cup", "mug")


def test_a_hostile_yolo_set_skips_bad_lines_and_keeps_unlabelled_photos(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "images" / f"{name}.jpg").write_bytes(photo_bytes(200, 100))
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n0 0.5 0.5\n5 0.5 0.5 0.1 0.1\nx 0.5 0.5 0.1 0.1\n"
                                  "1 0.1 0.1 0.3 0.1 0.3 0.3\n1 0.95 0.5 0.2 0.2\n")
    (labels / "b.txt").write_text("")
    (labels / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (tmp_path / "data.yaml").write_text("path: .\nnames: ['mug', \"cup's\"]  # two\n")
    aset = read_annotations(tmp_path)
    photos, text = by_name(aset), reasons(aset)
    assert aset.format == "yolo" and aset.classes == ("mug", "cup's")
    assert photos["a.jpg"].boxes == pytest.approx(np.array([[80, 30, 120, 70], [20, 10, 60, 30], [170, 40, 200, 60]]))
    assert photos["a.jpg"].labels == ("mug", "cup's", "cup's")
    assert "a.txt, line 2: has 3 numbers; a YOLO box line has 5" in text
    assert "a.txt, line 3: has class 5, but data.yaml lists 2 classes (0-1)" in text
    assert "a.txt, line 4: has something that is not a number" in text
    assert "a.txt, line 6: reached outside the 200x100 photo" in text
    assert len(photos["b.jpg"].boxes) == 0 and len(photos["c.jpg"].boxes) == 0
    assert "have no label file; kept as photos with nothing to find" in text
    assert "orphan.txt: names the photo “orphan.*”, which is not in the set" in text


@pytest.mark.parametrize("yaml, names", [
    ("names:\n  0: raccoon\n  1: \"red panda\"\n", ["raccoon", "red panda"]),
    ("nc: 2\nnames:\n- raccoon\n- 'o''possum'\ntrain: x\n", ["raccoon", "o'possum"]),
    ("names: {0: raccoon, 1: badger}\n", ["raccoon", "badger"]),
    ("names: [raccoon,\n  badger]\n", ["raccoon", "badger"]),
])
def test_yolo_class_names_come_from_any_data_yaml_layout(tmp_path: Path, yaml: str, names: list[str]) -> None:
    (tmp_path / "a.jpg").write_bytes(photo_bytes(100, 100))
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.2 0.2 0.1 0.1\n")
    (tmp_path / "data.yaml").write_text(yaml)
    assert read_yolo(tmp_path).photos[0].labels == tuple(names)


def test_a_hostile_zip_is_read_within_its_rules(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("images/a.jpg", photo_bytes(64, 64))
        archive.writestr("annotations/a.xml", voc_xml("a.jpg", (64, 64), [("cat", 1, 1, 30, 30)]))
        archive.writestr("../escape.xml", voc_xml("a.jpg", (64, 64), [("cat", 1, 1, 30, 30)]))
        archive.writestr("__MACOSX/._a.xml", b"junk")
        link = zipfile.ZipInfo("annotations/link.xml")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    aset = read_annotations(buffer.getvalue())
    text = reasons(aset)
    assert len(aset.photos) == 1 and aset.boxes == 1
    assert "../escape.xml: a path that leaves the archive's folders" in text
    assert "__MACOSX/._a.xml: a hidden or system file" in text and "annotations/link.xml: a link, not a file" in text


def test_the_coco_export_loads_in_pycocotools_with_the_same_boxes(tmp_path: Path) -> None:
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    photos = [LabelledPhoto("a b.jpg", 64, 48, [[1, 2, 30.5, 40], [3, 4, 5, 6]], ["cat", "dog"], photo_bytes(64, 48)),
              LabelledPhoto("c.png", 50, 50, [], [], photo_bytes(50, 50, "PNG"))]
    archive = zipfile.ZipFile(io.BytesIO(write_coco(photos, ["dog", "cat"])))
    (tmp_path / "instances.json").write_bytes(archive.read("annotations.json"))
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(tmp_path / "instances.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["dog", "cat"]
    boxes = [(coco.loadCats(a["category_id"])[0]["name"], a["bbox"]) for a in coco.loadAnns(coco.getAnnIds())]
    assert boxes == [("cat", [1, 2, 29.5, 38]), ("dog", [3, 4, 2, 2])]
    assert sorted(archive.namelist()) == ["annotations.json", "images/a b.jpg", "images/c.png"]


# ---- EXIF orientation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("orientation", range(1, 9))
def test_boxes_on_the_stored_pixels_land_on_the_same_object_once_the_photo_is_turned(tmp_path: Path,
                                                                                     orientation: int) -> None:
    block = (10, 5, 30, 15)  # a bright block in stored pixels of a 60x40 photo
    (tmp_path / "p.png").write_bytes(photo_bytes(60, 40, "PNG", orientation, block=block))
    (tmp_path / "p.xml").write_text(voc_xml("p.png", (60, 40), [("thing", *block)]))
    aset = read_voc(tmp_path)
    photo = aset.photos[0]
    pixels = intake.read_image(photo.data)[..., 0]
    x1, y1, x2, y2 = photo.boxes[0].astype(int)
    assert (pixels[y1:y2, x1:x2] == 250).all() and (pixels == 250).sum() == (x2 - x1) * (y2 - y1) == 200
    assert ("EXIF orientation" in reasons(aset)) == (orientation != 1)


def test_the_declared_size_tells_which_pixels_a_turned_photo_was_boxed_on(tmp_path: Path) -> None:
    (tmp_path / "p.jpg").write_bytes(photo_bytes(90, 60, orientation=6))
    (tmp_path / "p.xml").write_text(voc_xml("p.jpg", (60, 90), [("thing", 5, 10, 25, 40)]))
    aset = read_voc(tmp_path)
    assert aset.photos[0].boxes.tolist() == [[5, 10, 25, 40]], "declared as the turned photo: boxes kept"
    assert "drawn on the photo turned upright (its declared size 60x90" in reasons(aset)
    assert read_voc(tmp_path, exif="stored").photos[0].boxes.tolist() == [[20, 5, 50, 25]]
    assert stored_to_upright(np.array([[5, 10, 25, 40]]), 6, (90, 60)).tolist() == [[20, 5, 50, 25]]


def test_exports_hold_turned_photos_upright_without_a_tag(tmp_path: Path) -> None:
    (tmp_path / "p.jpg").write_bytes(photo_bytes(90, 60, orientation=8))
    (tmp_path / "p.xml").write_text(voc_xml("p.jpg", (90, 60), [("thing", 10, 10, 30, 20)]))
    original = read_voc(tmp_path)
    for fmt in ("voc", "coco", "yolo"):
        archive = zipfile.ZipFile(io.BytesIO(export(original, fmt)))
        with Image.open(io.BytesIO(archive.read("images/p.jpg"))) as image:
            assert image.size == (60, 90) and image.getexif().get(0x0112, 1) == 1
        again = read_annotations(export(original, fmt))
        assert "EXIF" not in reasons(again)
        assert np.abs(again.photos[0].boxes - original.photos[0].boxes).max() < 0.01


# ---- evaluation -------------------------------------------------------------------------------------------
def dets(boxes, scores, labels, names=("raccoon",)) -> Detections:
    return Detections(np.asarray(boxes, float).reshape(-1, 4), np.asarray(scores, float), labels, tuple(names))


def truth_photo(name: str, boxes, labels) -> LabelledPhoto:
    return LabelledPhoto(name, 500, 500, np.asarray(boxes, float).reshape(-1, 4), tuple(labels))


def test_ap_by_hand_on_one_class() -> None:
    """3 true boxes over 2 photos; detections by score: a perfect hit, a false alarm, a hit at IoU 0.62, a false
    alarm. Recall 1/3, 1/3, 2/3, 2/3 and precision 1, 1/2, 2/3, 1/2: the envelope is 1 up to recall 1/3 (the 34
    recall points 0..0.33) and 2/3 up to 2/3 (the 33 points 0.34..0.66), 0 beyond: AP50 = (34 + 33 * 2/3) / 101.
    From IoU 0.65 on the 0.62 hit is a false alarm: (34 * 1) / 101 there. AP = (3 * 56 + 7 * 34) / 1010."""
    truth = [truth_photo("a", [[0, 0, 100, 100], [300, 300, 400, 400]], ["raccoon"] * 2),
             truth_photo("b", [[0, 0, 100, 100]], ["raccoon"])]
    found = [dets([[0, 0, 100, 100], [200, 0, 250, 50]], [0.9, 0.8], [0, 0]),
             dets([[0, 0, 100, 62], [400, 400, 450, 450]], [0.7, 0.6], [0, 0])]
    result = evaluate(truth, found)
    raccoon = result.result("raccoon")
    assert raccoon.ap50 == pytest.approx(56 / 101, abs=1e-12)
    assert raccoon.ap == pytest.approx(406 / 1010, abs=1e-12) and result.map == raccoon.ap
    assert raccoon.ap_by_iou[:3] == pytest.approx([56 / 101] * 3) and raccoon.ap_by_iou[3:] == pytest.approx([34 / 101] * 7)
    assert raccoon.recall50 == pytest.approx(2 / 3)
    assert raccoon.curve.precision == pytest.approx([1, 1 / 2, 2 / 3, 1 / 2])
    assert raccoon.curve.recall == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert raccoon.curve.interpolated[RECALL_POINTS <= 1 / 3] == pytest.approx([1] * 34)
    assert (raccoon.curve.interpolated[RECALL_POINTS > 2 / 3] == 0).all()


def test_means_leave_out_classes_without_true_boxes_and_count_undetected_ones_as_zero() -> None:
    names = ("cat", "dog", "owl")
    truth = [truth_photo("a", [[0, 0, 50, 50], [100, 100, 200, 200]], ["cat", "dog"])]
    found = [dets([[0, 0, 50, 50], [300, 300, 350, 350]], [0.9, 0.8], [0, 2], names)]
    result = evaluate(truth, found)
    assert result.result("cat").ap == pytest.approx(1.0) and result.result("dog").ap == 0.0
    assert np.isnan(result.result("owl").ap) and result.result("owl").detections == 1
    assert result.map == pytest.approx(0.5) and result.map50 == pytest.approx(0.5)


def test_iou_of_exactly_one_half_is_a_hit_as_in_coco() -> None:
    result = evaluate([truth_photo("a", [[0, 0, 100, 100]], ["raccoon"])], [dets([[0, 0, 100, 50]], [0.5], [0])])
    assert result.result("raccoon").ap50 == pytest.approx(1.0) and result.result("raccoon").ap_by_iou[1] == 0.0


def test_each_photo_lists_its_misses_and_false_alarms_with_what_they_are() -> None:
    names = ("cat", "dog")
    truth = [truth_photo("a", [[0, 0, 100, 100], [200, 200, 300, 300], [400, 0, 480, 80]], ["cat", "cat", "dog"]),
             truth_photo("b", [], [])]
    found = {"a": dets([[0, 0, 100, 100], [2, 2, 100, 100], [400, 0, 480, 80], [200, 200, 240, 240],
                        [0, 300, 50, 350], [200, 200, 300, 300]], [0.9, 0.8, 0.7, 0.6, 0.55, 0.1],
                       [0, 0, 0, 0, 1, 0], names),
             "b": dets([[10, 10, 60, 60]], [0.99], [1], names)}
    result = evaluate(truth, found, score_threshold=0.5)
    a, b = result.photos
    assert a.hits == 1 and [m.label for m in a.misses] == ["cat", "dog"]
    assert [(f.kind, f.label) for f in a.false_alarms] == [("duplicate", "cat"), ("wrong class", "cat"),
                                                           ("poor box", "cat"), ("background", "dog")]
    assert a.false_alarms[1].other == "dog" and "on a dog, not a cat" in a.false_alarms[1].why
    assert b.misses == () and [f.kind for f in b.false_alarms] == ["background"]
    assert result.precision == pytest.approx(1 / 6) and result.recall == pytest.approx(1 / 3)
    assert result.result("cat").recall50 == 1.0, "AP counts every detection, the low-scoring hit too"


def random_case(rng: np.random.Generator, photos: int, names: tuple[str, ...]):
    truth, found = [], []
    for index in range(photos):
        count = int(rng.integers(0, 6))
        corner = rng.uniform(0, 400, (count, 2))
        boxes = np.hstack([corner, corner + rng.uniform(10, 100, (count, 2))])
        truth.append(LabelledPhoto(f"p{index}", 500, 500, boxes, [names[i] for i in rng.integers(0, len(names), count)]))
        jitter = boxes[rng.integers(0, count, int(rng.integers(0, 8)))] if count else np.zeros((0, 4))
        jitter = jitter + rng.normal(0, 8, jitter.shape)
        jitter = np.hstack([np.minimum(jitter[:, :2], jitter[:, 2:]), np.maximum(jitter[:, :2], jitter[:, 2:]) + 1])
        noise = rng.uniform(0, 450, (int(rng.integers(0, 3)), 2))
        extra = np.vstack([jitter, np.hstack([noise, noise + 40])])
        found.append(dets(extra, rng.uniform(0, 1, len(extra)), rng.integers(0, len(names), len(extra)), names))
    return truth, found


def coco_eval(truth: list[LabelledPhoto], found: list[Detections], names: tuple[str, ...]):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    ground = COCO()  # filled below, as a COCO file would be
    annotations = [{"id": n + 1, "image_id": i + 1, "category_id": names.index(label) + 1, "iscrowd": 0,
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)}
                   for n, (i, (x1, y1, x2, y2), label) in enumerate(
                       (i, box, label) for i, p in enumerate(truth) for box, label in zip(p.boxes.tolist(), p.labels))]
    ground.dataset = {"images": [{"id": i + 1, "width": 500, "height": 500} for i in range(len(truth))],
                      "annotations": annotations, "categories": [{"id": k + 1, "name": n} for k, n in enumerate(names)]}
    with contextlib.redirect_stdout(io.StringIO()):
        ground.createIndex()
    results = [{"image_id": i + 1, "category_id": int(label) + 1, "score": float(score),
                "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]}
               for i, d in enumerate(found) for (x1, y1, x2, y2), score, label in zip(d.boxes.astype(float), d.scores, d.labels)]
    with contextlib.redirect_stdout(io.StringIO()):
        run = COCOeval(ground, ground.loadRes(results), "bbox")
        run.evaluate()
        run.accumulate()
        run.summarize()
    return run


@pytest.mark.parametrize("seed", range(6))
def test_ap_matches_pycocotools_cocoeval(seed: int) -> None:
    pytest.importorskip("pycocotools")
    names = ("cat", "dog", "owl")
    truth, found = random_case(np.random.default_rng(seed), 12, names)
    mine = evaluate(truth, found, classes=names)
    theirs = coco_eval(truth, found, names)
    assert mine.map == pytest.approx(theirs.stats[0], abs=1e-12)
    assert mine.map50 == pytest.approx(theirs.stats[1], abs=1e-12)
    precision = theirs.eval["precision"][:, :, :, 0, 2]  # IoU x recall x class, area "all", 100 detections
    for k, name in enumerate(names):
        per_iou = precision[:, :, k].mean(axis=1) if (precision[:, :, k] > -1).all() else np.full(10, np.nan)
        assert mine.result(name).ap_by_iou == pytest.approx(per_iou, abs=1e-12, nan_ok=True)


def test_ap_matches_pycocotools_past_100_detections_a_photo_and_with_tied_scores() -> None:
    pytest.importorskip("pycocotools")
    rng = np.random.default_rng(7)
    truth, found = [], []
    for index in range(3):
        corner = rng.uniform(0, 400, (30, 2))
        truth.append(LabelledPhoto(f"p{index}", 500, 500, np.hstack([corner, corner + rng.uniform(10, 60, (30, 2))]),
                                   ["cat"] * 30))
        boxes = np.repeat(truth[-1].boxes, 5, axis=0) + rng.normal(0, 5, (150, 4))
        boxes = np.hstack([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:]) + 1])
        found.append(dets(boxes, np.round(rng.uniform(0, 1, 150), 1), np.zeros(150, int), ("cat",)))
    mine, theirs = evaluate(truth, found), coco_eval(truth, found, ("cat",))
    assert mine.result("cat").detections == 300, "100 a photo count, as in COCOeval"
    assert (mine.map, mine.map50) == pytest.approx((theirs.stats[0], theirs.stats[1]), abs=1e-12)
