"""The batch command line on the real staged photos: each subcommand, bad files, resume, the CLI, Ray."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, require_real
from vision_backend import models, samples
from vision_backend.batch import tasks
from vision_backend.batch.local import run_local
from vision_backend.batch.output import open_writer, read_rows
from vision_backend.batch.paths import expand
from vision_backend.errors import UserError
from vision_backend.intake import encode_jpeg, encode_png, read_image_file
from vision_backend.object_detection.coco import rle_decode

GROUPS = {"group_3faces.jpg": 3, "group_7faces_family.jpg": 7, "group_7faces_elvis.jpg": 7}
CATS = {"Egyptian_cat", "tabby", "tiger_cat", "Persian_cat", "Siamese_cat", "lynx"}
BAD = {"truncated.jpg": "truncated or corrupt", "notes.jpg": "not an image", "tiny.png": "1x1 pixels"}


@pytest.fixture(scope="module")
def staged() -> Path:
    require_real("photos")
    return samples.photos_dir()


@pytest.fixture
def folder(staged: Path, tmp_path: Path) -> Path:
    """The staged photos in a folder (one in a sub-folder) with three bad files among them."""
    photos = tmp_path / "photos"
    shutil.copytree(staged, photos, ignore=shutil.ignore_patterns("*.json", "obama_*", "biden*"))
    (photos / "more").mkdir()
    shutil.move(photos / "group_3faces.jpg", photos / "more" / "group_3faces.jpg")
    (photos / "truncated.jpg").write_bytes((staged / "group_7faces_family.jpg").read_bytes()[:6000])
    (photos / "notes.jpg").write_text("not a photo at all")
    (photos / "tiny.png").write_bytes(encode_png(np.zeros((1, 1, 3), np.uint8)))
    return photos


def rows_of(task: tasks.Task, paths: list[str], **options) -> list[dict]:
    out: list[dict] = []
    run_local(task.resolve(paths), paths, out.extend, progress=False, **options)
    return out


def by_photo(rows: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(Path(row["path"]).name, []).append(row)
    return grouped


def boxes(rows: list[dict]) -> np.ndarray:
    return np.array([[r["x1"], r["y1"], r["x2"], r["y2"]] for r in rows if "x1" in r]).reshape(-1, 4)


# ---- paths -----------------------------------------------------------------------------------------
def test_paths_from_files_folders_globs_and_a_list(tmp_path: Path) -> None:
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / "a" / ".hidden").mkdir()
    for name in ("a/1.jpg", "a/deep/2.PNG", "a/notes.txt.bak", "a/.hidden/3.jpg", "b.webp", "a/.4.jpg"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("# photos\nb.webp\n\na/1.jpg\nmissing.jpg\nlist.txt\n")
    warned: list[str] = []
    found = expand([tmp_path / "a", str(tmp_path / "*.webp"), tmp_path / "list.txt", tmp_path / "a" / "1.jpg",
                    str(tmp_path / "none*.jpg")], warn=warned.append)
    names = [os.path.relpath(p, tmp_path) for p in found]
    assert names == ["a/1.jpg", "a/deep/2.PNG", "b.webp", "missing.jpg", "list.txt"], "ordered, once each"
    assert len(warned) == 1 and "none*.jpg" in warned[0]
    assert expand([str(tmp_path / "**" / "*.PNG")]) == [str(tmp_path / "a" / "deep" / "2.PNG")]


# ---- each subcommand on the real photos -------------------------------------------------------------
def test_classify_labels_the_cat_and_matches_the_classifier(real_model, staged: Path) -> None:
    classifier = real_model(models.default("classify").name)
    names = ["cat_chelsea.png", "dog_bicycle_truck.jpg", "no_face_eagle.jpg"]
    rows = by_photo(rows_of(tasks.Classify(), [str(staged / n) for n in names], batch_size=2))
    assert rows["cat_chelsea.png"][0]["label"] in CATS
    for name in names:
        page = classifier.classify([read_image_file(staged / name)])[0]
        row = rows[name][0]
        assert [t["label"] for t in row["top"]] == [label for _, label, _ in page.top], "the page's top 5, in order"
        assert np.allclose([t["probability"] for t in row["top"]], [p for _, _, p in page.top], atol=2e-4)


@pytest.mark.parametrize("detector", ["yunet", "dlib_hog"])
def test_faces_counts_and_the_detectors_own_boxes(real_model, staged: Path, detector: str) -> None:
    model = real_model(detector)
    rows = by_photo(rows_of(tasks.Faces(detector), [str(staged / n) for n in GROUPS]))
    for name, count in GROUPS.items():
        assert {r["faces"] for r in rows[name]} == {count} and len(rows[name]) == count
        page = model.detect(read_image_file(staged / name))
        assert np.array_equal(boxes(rows[name]), np.array([r["box_xyxy"] for r in page.to_records()])), \
            "the same boxes as the page, to the tenth of a pixel"


def test_one_row_per_photo_holds_its_detections(real_model, staged: Path, tmp_path: Path) -> None:
    paths = [str(staged / n) for n in GROUPS] + [str(staged / "no_face_eagle.jpg")]
    task = tasks.Faces(per="photo").resolve(paths)
    with open_writer(tmp_path / "faces.csv", task.columns()) as writer:
        run_local(task, paths, writer.write, progress=False)
    rows = read_rows(tmp_path / "faces.csv")
    assert [Path(r["path"]).name for r in rows] == [*GROUPS, "no_face_eagle.jpg"]
    for row, count in zip(rows, [*GROUPS.values(), 0]):
        detections = json.loads(row["detections"])
        assert int(row["faces"]) == len(detections) == count
        assert all(len(d["landmarks"]) == 5 for d in detections)


def test_objects_finds_the_dog_and_the_bicycle_and_masks_are_coco_rle(real_model, staged: Path) -> None:
    path = str(staged / "dog_bicycle_truck.jpg")
    nanodet = rows_of(tasks.Objects(), [path])
    assert {"dog", "bicycle"} <= {r["label"] for r in nanodet}
    page = real_model("nanodet_m").detect(read_image_file(path))
    assert np.array_equal(boxes(nanodet), np.array([r["box_xyxy"] for r in page.to_records()]))
    assert [r["category_id"] for r in nanodet if r["label"] == "dog"] == [18]
    segmenter = real_model("yolov8n_seg")
    seg = rows_of(tasks.Objects("yolov8n_seg"), [path])
    found = segmenter.detect(read_image_file(path))
    assert [r["label"] for r in seg] == found.names and {"dog", "bicycle"} <= set(found.names)
    for row, mask in zip(seg, found.masks):
        assert np.array_equal(rle_decode(row["mask"]), mask) and row["mask_area"] == int(mask.sum())


@pytest.fixture
def gallery_home(real_model, staged: Path, tmp_path: Path) -> Path:
    from vision_backend.face_recognition import recognise
    from vision_backend.workspace import Workspace

    home = tmp_path / "home"
    recognise.enrol_demo_people(Workspace.at(home).gallery(), real_model(models.default("embed").name))
    return home


def test_recognize_names_the_enrolled_people(staged: Path, gallery_home: Path, tmp_path: Path) -> None:
    rows = by_photo(rows_of(tasks.Recognize(home=str(gallery_home)), [str(staged / "two_people.jpg"),
                                                                       str(staged / "obama_2.jpg")]))
    assert {r["name"] for r in rows["two_people.jpg"]} == {"Barack Obama", "Joe Biden"}
    assert [r["name"] for r in rows["obama_2.jpg"]] == ["Barack Obama"]
    assert all(r["distance"] <= 0.42 for r in rows["two_people.jpg"])
    with pytest.raises(UserError, match="no face gallery"):
        tasks.Recognize(home=str(tmp_path / "nobody")).resolve([])


def test_embed_writes_the_recognisers_vectors_to_npy_and_parquet(real_model, staged: Path, tmp_path: Path) -> None:
    from vision_backend.face_recognition.recognise import analyse

    path = str(staged / "two_people.jpg")
    task = tasks.Embed().resolve([path])
    for out in (tmp_path / "faces.npy", tmp_path / "faces.parquet"):
        with open_writer(out, task.columns()) as writer:
            run_local(task, [path], writer.write, progress=False)
    expected = analyse(real_model(models.default("embed").name), read_image_file(path)).vectors
    vectors = np.load(tmp_path / "faces.npy")
    assert vectors.shape == (2, 128) and vectors.dtype == np.float32
    assert np.allclose(vectors, expected, atol=1e-6)
    assert [r["vector"] for r in read_rows(tmp_path / "faces.npy")] == [0, 1]
    parquet = read_rows(tmp_path / "faces.parquet")
    assert np.allclose(np.array([r["embedding"] for r in parquet]), expected, atol=1e-6)


def test_project_classify_uses_the_newest_saved_model(tmp_path: Path) -> None:
    """A project's model (raw 0-255 RGB in, its classes out), found in a workspace as the page saves it."""
    import keras

    from vision_backend.transfer.export import photo_probabilities
    from vision_backend.workspace import Workspace

    project = Workspace.at(tmp_path / "home").project("Colours")
    for stem, sign in (("old_fast", -1.0), ("new_fast", 1.0)):  # red-minus-blue: the newest says red is red
        inputs = keras.Input((32, 32, 3))
        dense = keras.layers.Dense(2, activation="softmax")
        model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)))
        dense.set_weights([sign * np.array([[0.1, -0.1], [0, 0], [-0.1, 0.1]], np.float32), np.zeros(2, np.float32)])
        project.save_model(stem, model, {"classes": ["red", "blue"]})
    photos = []
    for name, colour in (("red.png", (220, 20, 20)), ("blue.jpg", (20, 20, 220))):
        (tmp_path / name).write_bytes(encode_png(np.full((64, 64, 3), colour, np.uint8)))
        photos.append(str(tmp_path / name))
    rows = rows_of(tasks.ProjectClassify("Colours", home=str(tmp_path / "home")), photos)
    assert [r["label"] for r in rows] == ["red", "blue"] and rows[0]["model"] == "Colours/new_fast"
    expected = photo_probabilities(model, [read_image_file(p) for p in photos])
    assert np.allclose([[r["probabilities"]["red"], r["probabilities"]["blue"]] for r in rows], expected, atol=1e-4)
    with pytest.raises(UserError, match="no project"):
        tasks.ProjectClassify("Nope", home=str(tmp_path / "home")).resolve([])


# ---- bad files, settings, resume --------------------------------------------------------------------
@pytest.mark.parametrize("task", [tasks.Classify, tasks.Faces, tasks.Objects])
def test_bad_files_become_rows_with_reasons_and_the_run_goes_on(real_model, folder: Path, task) -> None:
    paths = expand([folder])
    rows = rows_of(task(), paths, batch_size=4)
    failed = {Path(r["path"]).name: r["error"] for r in rows if "error" in r}
    assert set(failed) == set(BAD)
    for name, reason in BAD.items():
        assert reason in failed[name] and "Traceback" not in failed[name] and name in failed[name]
    done = {r["path"] for r in rows if "error" not in r}
    assert done == set(paths) - {str(folder / n) for n in BAD}, "every good photo still has its rows"
    assert [r["path"] for r in rows] == sorted((r["path"] for r in rows), key=paths.index), "in the photos' order"


@pytest.mark.parametrize("task", [tasks.Classify, tasks.Faces, tasks.Objects])
def test_lanes_and_one_spinning_engine_give_the_same_rows(real_model, staged: Path, task) -> None:
    paths = [str(p) for p in sorted(staged.glob("*.jpg"))]
    lanes, spinning = rows_of(task(), paths, batch_size=5), rows_of(task(spinning=True), paths, batch_size=5)
    assert [r.get("label") for r in lanes] == [r.get("label") for r in spinning]
    assert np.array_equal(boxes(lanes), boxes(spinning))
    if task is tasks.Classify:
        assert np.allclose([r["probability"] for r in lanes], [r["probability"] for r in spinning], atol=2e-4)


def test_settings_are_checked_against_the_models_params(real_model) -> None:
    with pytest.raises(KeyError, match="no setting 'bogus'"):
        tasks.Faces(settings={"bogus": "1"}).resolve([])
    with pytest.raises(ValueError, match="max_side is between"):
        tasks.Faces(settings={"max_side": "5"}).resolve([])
    assert tasks.Faces(settings={"score_threshold": "0.9"}).resolve([]).settings == \
        {"score_threshold": 0.9, "nms_threshold": 0.3, "max_side": 640}
    with pytest.raises(ValueError, match="No object detector called 'nope'"):
        tasks.Objects("nope").resolve([])


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_resume_skips_photos_already_in_the_output(real_model, folder: Path, tmp_path: Path, suffix: str) -> None:
    paths = expand([folder])
    out = tmp_path / f"faces{suffix}"
    task = tasks.Faces().resolve(paths)
    with open_writer(out, task.columns()) as writer:
        run_local(task, paths[:3], writer.write, progress=False)
    if suffix != ".parquet":  # a run killed mid-line: the half row is cut off, its photo done again
        with open(out, "a") as handle:
            handle.write('{"path": "half a row' if suffix == ".jsonl" else "/half,a,row")
    seen: list[str] = []
    with open_writer(out, task.columns(), resume=True) as writer:
        assert writer.done == set(paths[:3])
        todo = [p for p in paths if p not in writer.done]
        run_local(task, todo, lambda rows: (seen.extend(r["path"] for r in rows), writer.write(rows)),
                  progress=False)
    assert not set(seen) & set(paths[:3])
    rows = read_rows(out)
    assert [r["path"] for r in rows] == sorted((r["path"] for r in rows), key=paths.index)
    assert {r["path"] for r in rows} == set(paths) and len(rows) == len(rows_of(tasks.Faces(), paths))


def test_resume_does_again_a_photo_whose_rows_were_cut_short(real_model, staged: Path, tmp_path: Path) -> None:
    """A run killed between a photo's rows (its count says 3 faces, 2 rows are there): the photo is not done."""
    path = str(staged / "group_3faces.jpg")
    out = tmp_path / "faces.jsonl"
    task = tasks.Faces().resolve([path])
    with open_writer(out, task.columns(), count=task.count) as writer:
        run_local(task, [path], writer.write, progress=False)
    rows = read_rows(out)
    assert len(rows) == rows[0]["faces"] == 3
    out.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))  # the third row never written
    with open_writer(out, task.columns(), resume=True, count=task.count) as writer:
        assert writer.done == set(), "two rows of three: the photo is done again"
        run_local(task, [path], writer.write, progress=False)
    assert len(read_rows(out)) == 3, "whole, once"


def test_a_parquet_run_killed_half_way_is_resumed_not_started_over(real_model, folder: Path, tmp_path: Path) -> None:
    paths = expand([folder])
    out = tmp_path / "faces.parquet"
    task = tasks.Faces().resolve(paths)
    writer = open_writer(out, task.columns(), count=task.count)
    run_local(task, paths[:3], writer.write, batch_size=1, progress=False)  # then killed: close() never runs
    assert not out.exists() and len(list(writer.parts.glob("part-*.parquet"))) == 3
    with open_writer(out, task.columns(), resume=True, count=task.count) as again:
        assert again.done == set(paths[:3]), "the killed run's batches count"
        run_local(task, [p for p in paths if p not in again.done], again.write, progress=False)
    assert {r["path"] for r in read_rows(out)} == set(paths) and not writer.parts.exists()


def test_an_unwritable_output_folder_is_refused_before_any_photo_is_read(staged: Path, tmp_path: Path) -> None:
    """The issue's case: embeddings into a folder that cannot be written were computed, then all lost."""
    (tmp_path / "a file").write_text("not a folder")
    with pytest.raises(UserError, match="cannot write to"):
        open_writer(tmp_path / "a file" / "faces.npy", tasks.Embed().columns())
    started = time.perf_counter()
    result = cli("embed", str(staged / "two_people.jpg"), "--out", str(tmp_path / "a file" / "faces.npy"))
    assert result.returncode == 2 and "cannot write to" in result.stderr and "Traceback" not in result.stderr
    assert time.perf_counter() - started < 60, "refused before the model is loaded and the photos read"


def test_a_run_in_which_every_photo_failed_exits_1_and_frames_are_noted(staged: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a photo")
    result = cli("faces", str(bad), "--out", str(tmp_path / "bad.csv"), "--quiet")
    assert result.returncode == 1 and "0 done, 1 failed" in result.stdout, result.stdout
    frames = tmp_path / "frames.gif"
    photo = Image.open(staged / "obama_1.jpg")
    photo.save(frames, save_all=True, append_images=[photo.rotate(90), photo.rotate(180)])
    result = cli("faces", str(frames), str(bad), "--out", str(tmp_path / "frames.csv"), "--quiet")
    assert result.returncode == 0, "some photos done: the run did its work"
    rows = read_rows(tmp_path / "frames.csv")
    assert rows[0]["note"].endswith("uses frame 1 of 3.") and "note" not in rows[-1]


# ---- the command line ---------------------------------------------------------------------------------
UMASK = 0o022
"""The umask the command line runs under in these tests (the usual one: new files 0644)."""


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vision_backend", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, preexec_fn=lambda: os.umask(UMASK))


def test_cli_help_shows_examples() -> None:
    for args in ([], ["faces"]):
        shown = cli(*args, "--help")
        assert shown.returncode == 0 and "examples:" in shown.stdout and "--out" in shown.stdout


def test_cli_faces_with_blur_writes_copies_only_inside_the_folder(real_model, staged: Path, folder: Path,
                                                                  tmp_path: Path) -> None:
    photo = read_image_file(staged / "group_3faces.jpg")
    (folder / "more" / "group_3faces.png").write_bytes(encode_png(photo))  # lossless, to compare pixels
    (folder / "more" / "group_3faces.jpg").unlink()
    before = sorted(p for p in tmp_path.rglob("*"))
    done = cli("faces", str(folder), "--out", str(tmp_path / "faces.csv"), "--blur", str(tmp_path / "blurred"))
    assert done.returncode == 0, done.stderr
    assert "3 failed" in done.stdout and "photos/s" in done.stdout
    written = sorted(p for p in (tmp_path / "blurred").rglob("*") if p.is_file())
    after = sorted(p for p in tmp_path.rglob("*") if p not in before)
    assert set(after) == set(written) | {tmp_path / "faces.csv", tmp_path / "blurred", tmp_path / "blurred" / "more"}
    assert tmp_path / "blurred" / "more" / "group_3faces.png" in written, "the folder layout is mirrored"
    assert {oct(p.stat().st_mode & 0o777) for p in [*written, tmp_path / "faces.csv"]} == {oct(0o666 & ~UMASK)}, \
        "files written for a person follow the umask (mkstemp's 0600 would hide them from everyone else)"
    rows = [r for r in read_rows(tmp_path / "faces.csv") if r["path"].endswith("group_3faces.png")]
    copy = read_image_file(tmp_path / "blurred" / "more" / "group_3faces.png")
    inside = np.zeros(photo.shape[:2], bool)
    for r in rows:
        assert r["anonymised"] == str(tmp_path / "blurred" / "more" / "group_3faces.png")
        x1, y1, x2, y2 = (int(float(r[k])) for k in ("x1", "y1", "x2", "y2"))
        inside[y1:y2, x1:x2] = True
        assert np.abs(copy[y1:y2, x1:x2].astype(int) - photo[y1:y2, x1:x2]).mean() > 2, "each face blurred"
    grown = cv2.dilate(inside.astype(np.uint8), np.ones((61, 61), np.uint8)).astype(bool)
    assert np.array_equal(copy[~grown], photo[~grown]), "nothing else touched"


def test_copies_never_land_outside_their_folder(tmp_path: Path) -> None:
    base = str(tmp_path / "in")
    for odd in ("../../etc/passwd.jpg", "in/../../x.png", "/abs/.hidden.gif", "in/sub/a\\b.jpeg"):
        target = tasks.copy_path(tmp_path / "out", base, str(tmp_path / "in" / odd) if not odd.startswith("/") else odd)
        assert target.resolve().is_relative_to((tmp_path / "out").resolve()), odd
        assert target.suffix in (".jpg", ".jpeg", ".png")


def test_draft_decoding_keeps_the_faces(real_model, staged: Path, tmp_path: Path) -> None:
    """A large JPEG: full decode by default (the page's boxes exactly); with --draft, the same faces within
    one pixel of YuNet's 640 px input."""
    big = cv2.resize(read_image_file(staged / "group_3faces.jpg"), None, fx=6, fy=6, interpolation=cv2.INTER_CUBIC)
    path = tmp_path / "big.jpg"
    path.write_bytes(encode_jpeg(big, 92))
    page = real_model("yunet").detect(read_image_file(path))
    exact = rows_of(tasks.Faces(), [str(path)])
    assert np.array_equal(boxes(exact), np.array([r["box_xyxy"] for r in page.to_records()]))
    task = tasks.Faces(draft=True).resolve([str(path)])
    assert task.read(str(path)).scale == 2.0
    drafted = rows_of(task, [str(path)])
    assert len(drafted) == len(page) == 3
    drafted_boxes = boxes(drafted)[np.argsort(boxes(drafted)[:, 0])]
    assert np.abs(drafted_boxes - page.boxes[np.argsort(page.boxes[:, 0])]).max() <= max(big.shape) / 640


def test_cli_reports_a_bad_setting_in_one_line(staged: Path, tmp_path: Path) -> None:
    done = cli("objects", str(staged), "--out", str(tmp_path / "o.csv"), "--set", "score_threshold=2")
    assert done.returncode == 2 and done.stderr.strip().startswith("error: score_threshold is between")
    assert "Traceback" not in done.stderr and not (tmp_path / "o.csv").exists()


# ---- Ray -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ray_run_gives_the_same_rows_as_the_local_run(real_model, folder: Path, monkeypatch) -> None:
    """A local 2-CPU Ray on 127.0.0.1, started and stopped here: each task's rows, in the same order."""
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a one-machine Ray on the loopback
    import ray

    from vision_backend.batch.ray_runner import run_ray

    paths = expand([folder])
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        assert ray.nodes()[0]["NodeManagerAddress"] == "127.0.0.1"
        for task in (tasks.Faces(), tasks.Objects(), tasks.Classify()):
            local = json.loads(json.dumps(rows_of(task, paths, batch_size=4)))
            remote: list[dict] = []
            summary = run_ray(task, paths, remote.extend, batch_size=4, progress=False)
            assert remote == local, task.name
            assert summary.photos == len(paths) and summary.failed == len(BAD)
    finally:
        ray.shutdown()
