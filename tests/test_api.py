"""The HTTP API: every call on real weights, keys and their workspaces, limits, hostile bodies, the OpenAPI
document, fuzzing from it, and the real server (``streamlit run app.py``) serving the API beside the pages.

Most tests call the API in this process (Starlette's test client on the very application ``app.py`` mounts),
each module with a workspace folder of its own.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from api_tools import fuzz, hammer, multipart
from conftest import require_real

from vision_backend import api, samples
from vision_backend.api import keys as api_keys
from vision_backend.api import limits
from vision_backend.batch import tasks
from vision_backend.intake import encode_png
from vision_backend.workspace import Workspace

FACES = "two_people.jpg"
OBAMA, OBAMA_TOO, BIDEN = "obama_1.jpg", "obama_2.jpg", "biden.jpg"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A workspace folder of the module's own, generous limits (tests that want tight ones set their own)."""
    folder = tmp_path_factory.mktemp("api_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VISION_LAB_HOME", str(folder))
        patch.setenv("VISION_LAB_API_RATE", "10000")
        limits.reset()
        yield folder
    limits.reset()


@pytest.fixture(scope="module")
def client(home: Path) -> Iterator[TestClient]:
    with TestClient(Starlette(routes=[api.mount()])) as test_client:
        yield test_client


def key_for(space: Workspace, name: str, writable: bool = True) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_keys.KeyRing(space).create(name, writable, 'test')}"}


@pytest.fixture(scope="module")
def mine(home: Path) -> dict[str, str]:
    return key_for(Workspace.local(), "mine")


@pytest.fixture(scope="module")
def theirs(home: Path) -> dict[str, str]:
    """A key of another person's workspace on the same server."""
    return key_for(Workspace.for_person("https://accounts.example.org", "someone-else", "them@example.org"), "theirs")


def jpeg(name: str) -> bytes:
    require_real("photos")
    return (samples.photos_dir() / name).read_bytes()


def photo(name: str = FACES, field: str = "photo") -> dict:
    return {field: (name, jpeg(name), "image/jpeg")}


# ---- every call, on real weights ---------------------------------------------------------------------
@pytest.mark.parametrize("call, model, count", [("faces", "yunet", "faces"), ("objects", "nanodet_m", "objects")])
def test_detections_are_the_batch_commands_rows(client, mine, real_model, call: str, model: str, count: str) -> None:
    """The answer is ``--per photo``'s row for the same file: same fields, same boxes in the photo's pixels."""
    real_model(model)
    answer = client.post(f"/api/v1/{call}", headers=mine, files=photo())
    assert answer.status_code == 200, answer.text
    task = {"faces": tasks.Faces, "objects": tasks.Objects}[call](per="photo").resolve([])
    task.load()
    expected = task.run([str(samples.photos_dir() / FACES)])[0]
    assert answer.json() == {**expected, "path": FACES}
    assert answer.json()[count] >= 2 and answer.json()["model"] == model


def test_classify_as_json_with_base64_and_a_setting_of_the_call(client, mine, real_model) -> None:
    real_model("mobilenet_v2_quant_tflite")
    body = {"photo": base64.b64encode(jpeg("cat_chelsea.png")).decode(), "photo_name": "my cat.png"}
    answer = client.post("/api/v1/classify?top=3", headers=mine, json=body)
    assert answer.status_code == 200, answer.text
    row = answer.json()
    assert row["path"] == "my cat.png" and len(row["top"]) == 3 and "cat" in row["label"]


def test_settings_are_checked_with_the_command_lines_messages(client, mine) -> None:
    from vision_backend.__main__ import main as batch_main  # noqa: F401 - the command line checks the same way
    from vision_backend.errors import SettingError

    for query, overrides in (("score_threshold=2", {"score_threshold": "2"}), ("nonsense=1", {"nonsense": "1"})):
        answer = client.post(f"/api/v1/faces?{query}", headers=mine, files=photo())
        with pytest.raises(SettingError) as expected:
            tasks.Faces(settings=overrides).resolve([])
        assert (answer.status_code, answer.json()["error"]) == (400, str(expected.value))
    assert client.post("/api/v1/faces?model=nope", headers=mine, files=photo()).status_code == 400
    assert client.post("/api/v1/classify?top=0", headers=mine, files=photo()).status_code == 400


@pytest.mark.slow
def test_gallery_enrol_recognize_verify_embed_and_delete(client, mine, real_model) -> None:
    """dlib's embeddings: enrol one person by API, find them in another photo, verify, and forget them."""
    real_model("dlib_resnet_face")
    assert client.post("/api/v1/recognize", headers=mine, files=photo(OBAMA_TOO)).status_code == 404  # nobody yet
    enrolled = client.post("/api/v1/gallery/Barack Obama", headers=mine, files=photo(OBAMA))
    assert enrolled.json() == {"person": "Barack Obama", "path": OBAMA, "model": "dlib_resnet_face",
                               "result": "enrolled"}
    assert client.get("/api/v1/gallery", headers=mine).json() == {"people": [{"name": "Barack Obama", "faces": 1}]}
    named = client.post("/api/v1/recognize", headers=mine, files=photo(OBAMA_TOO)).json()
    assert [d["name"] for d in named["detections"]] == ["Barack Obama"]
    same = client.post("/api/v1/verify", headers=mine, files={**photo(OBAMA, "photo_a"), **photo(OBAMA_TOO, "photo_b")})
    other = client.post("/api/v1/verify", headers=mine, files={**photo(OBAMA, "photo_a"), **photo(BIDEN, "photo_b")})
    assert same.json()["same"] is True and other.json()["same"] is False
    embedded = client.post("/api/v1/embed", headers=mine, files=photo(FACES)).json()
    assert embedded["faces"] == 2 and all(len(d["embedding"]) == 128 for d in embedded["detections"])
    assert abs(np.linalg.norm(embedded["detections"][0]["embedding"]) - 1) < 1e-3
    assert client.delete("/api/v1/gallery/Barack Obama", headers=mine).json() == {"deleted": "Barack Obama"}
    assert client.delete("/api/v1/gallery/Barack Obama", headers=mine).status_code == 404


@pytest.fixture(scope="module")
def colours(home: Path) -> Workspace:
    """A project trained as the page saves one: a whole Keras model, raw 0-255 RGB in, its classes out."""
    import keras

    space = Workspace.local()
    inputs = keras.Input((32, 32, 3))
    dense = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)))
    dense.set_weights([np.array([[0.1, -0.1], [0, 0], [-0.1, 0.1]], np.float32), np.zeros(2, np.float32)])
    space.project("Colours").save_model("mobilenet_v2_fast", model, {"classes": ["red", "blue"]})
    return space


def test_a_projects_own_classes_and_the_list_of_projects(client, mine, colours) -> None:
    red = encode_png(np.full((64, 64, 3), (220, 20, 20), np.uint8))
    answer = client.post("/api/v1/projects/Colours/predict", headers=mine, files={"photo": ("red.png", red)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["label"] == "red" and answer.json()["model"] == "Colours/mobilenet_v2_fast"
    listed = client.get("/api/v1/projects", headers=mine).json()["projects"]
    assert {"name": "Colours", "model": "mobilenet_v2_fast", "classes": ["red", "blue"]}.items() <= listed[0].items()
    assert client.post("/api/v1/projects/Nope/predict", headers=mine, files={"photo": ("r.png", red)}).status_code == 404


def test_own_detectors_answer_404_with_what_to_do(client, mine) -> None:
    answer = client.post("/api/v1/detectors/cars/detect", headers=mine, files=photo())
    assert answer.status_code == 404 and "no detector called “cars”" in answer.json()["error"]
    assert "Your own objects page" in answer.json()["error"]
    Workspace.local().detection_project("Untrained").add_class("mug")
    answer = client.post("/api/v1/detectors/Untrained/detect", headers=mine, files=photo())
    assert answer.status_code == 404 and "has no detector yet: train one" in answer.json()["error"]


RACCOONS = "data/detection/raccoon"


@pytest.fixture(scope="module")
def raccoon_detector(home: Path) -> Path:
    """A detection project trained as the Your own objects page trains one (real raccoon photos, the fast detector);
    returns one of the photos it learnt from (the API, not the detector, is under test here)."""
    from conftest import require_shared
    from vision_backend.own_detection import read_csv, workflow

    require_real("mobilenet_v2_notop")
    folder = require_shared() / RACCOONS
    project = Workspace.local().detection_project("Raccoons")
    for labelled in read_csv(folder / "train_labels.csv").photos[:16]:
        project.add_photo(labelled.data, labelled.name, labelled.boxes, labelled.labels)
    workflow.train_project(project, "fast", {"epochs": 8, "input_size": 224, "crops": 0}, 0.0)
    return folder / "images" / project.photos()[0].name


@pytest.mark.slow
def test_your_own_detector_answers_with_the_batch_commands_row(client, mine, raccoon_detector: Path) -> None:
    """POST /detectors/{project}/detect: the newest detector trained on a detection project of the key's workspace,
    its settings as query parameters, the same row as ``objects --project`` for the same file."""
    files = {"photo": ("raccoon.jpg", raccoon_detector.read_bytes(), "image/jpeg")}
    answer = client.post("/api/v1/detectors/Raccoons/detect?score_threshold=0.2", headers=mine, files=files)
    assert answer.status_code == 200, answer.text
    row = answer.json()
    assert row["model"].startswith("Raccoons/fast_") and row["objects"] >= 1
    assert {d["label"] for d in row["detections"]} == {"raccoon"}
    task = tasks.ProjectObjects("Raccoons", per="photo", settings={"score_threshold": "0.2"}).resolve([])
    task.load()
    assert row == {**task.run([str(raccoon_detector)])[0], "path": "raccoon.jpg"}
    for query in ("score_threshold=2", "anchors=9"):
        refused = client.post(f"/api/v1/detectors/Raccoons/detect?{query}", headers=mine, files=files)
        assert refused.status_code == 400, refused.text


def test_model_cards_list_every_registered_model_with_its_settings(client, mine) -> None:
    from vision_backend import models

    cards = {c["name"]: c for c in client.get("/api/v1/models", headers=mine).json()["models"]}
    assert set(cards) == set(models.all_models())
    assert [s["name"] for s in cards["yunet"]["settings"]] == [p.name for p in models.get("yunet").params]


# ---- keys: who may call, and which workspace a key reaches ------------------------------------------
def test_no_key_a_wrong_key_and_a_revoked_key_get_the_same_401(client, home) -> None:
    ring = api_keys.KeyRing(Workspace.local())
    revoked = {"Authorization": f"Bearer {ring.create('soon gone', False, 'test')}"}
    assert client.get("/api/v1/gallery", headers=revoked).status_code == 200
    ring.revoke("soon gone")
    token = revoked["Authorization"].split()[1]
    wrong = {"Authorization": "Bearer " + token[:-4] + ("0000" if not token.endswith("0000") else "1111")}
    answers = [client.get("/api/v1/gallery", headers=h) for h in ({}, {"Authorization": "Basic eA=="}, wrong,
                                                                   {"Authorization": "Bearer nonsense"}, revoked)]
    assert {(a.status_code, a.text, a.headers["www-authenticate"]) for a in answers} == {
        (401, answers[0].text, 'Bearer realm="Vision Lab"')}


def test_keys_are_stored_hashed_and_listed_with_their_last_use(client, home) -> None:
    ring = api_keys.KeyRing(Workspace.local())
    key = ring.create("listed", True, "Ada (keys page)")
    client.get("/api/v1/gallery", headers={"Authorization": f"Bearer {key}", "User-Agent": "my-scanner/1.0"})
    stored = b"".join(p.read_bytes() for p in (home / "api").iterdir())
    assert key.encode() not in stored and key.split("_")[-1].encode() not in stored
    listed = next(k for k in ring.list() if k["name"] == "listed")
    assert listed["created_by"] == "Ada (keys page)" and listed["last_used"] and "my-scanner/1.0" in listed["last_from"]
    with pytest.raises(Exception, match="exists already"):
        ring.create("listed", True, "again")


def test_a_read_only_key_reads_but_cannot_change_the_gallery(client, home) -> None:
    read_only = key_for(Workspace.local(), "reader", writable=False)
    assert client.get("/api/v1/gallery", headers=read_only).status_code == 200
    for answer in (client.post("/api/v1/gallery/Someone", headers=read_only, files=photo(OBAMA)),
                   client.delete("/api/v1/gallery/Someone", headers=read_only)):
        assert answer.status_code == 403 and "read-only" in answer.json()["error"]


def test_a_key_reaches_only_its_own_workspace(client, mine, theirs, colours) -> None:
    """Another person's key sees none of this workspace's projects, gallery or people, and a key whose
    workspace part is swapped for another's is refused."""
    space = Workspace.local()
    space.gallery().enrol("Private Person", "dlib_resnet_face", [(np.ones(128, np.float32) / np.sqrt(128),
                                                                  np.zeros((8, 8, 3), np.uint8), "p.jpg")])
    leaks = [client.get("/api/v1/projects", headers=theirs).json() != {"projects": []},
             client.get("/api/v1/gallery", headers=theirs).json() != {"people": []},
             client.post("/api/v1/projects/Colours/predict", headers=theirs, files=photo()).status_code != 404,
             client.delete("/api/v1/gallery/Private Person", headers=theirs).status_code != 404]
    assert leaks == [False] * 4
    assert client.get("/api/v1/gallery", headers=mine).json()["people"] == [{"name": "Private Person", "faces": 1}]
    _, _, key_id, secret = theirs["Authorization"].split()[1].split("_")
    forged = {"Authorization": f"Bearer vl_local_{key_id}_{secret}"}
    assert client.get("/api/v1/gallery", headers=forged).status_code == 401


def test_the_command_line_makes_lists_and_revokes_keys(client, home, capsys) -> None:
    from vision_backend.__main__ import main

    assert main(["keys", "create", "--home", str(home), "--name", "operator", "--read-only"]) == 0
    key = capsys.readouterr().out.strip()
    assert client.get("/api/v1/gallery", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    main(["keys", "list", "--home", str(home)])
    assert "operator" in capsys.readouterr().out
    main(["keys", "revoke", "--home", str(home), "--name", "operator"])
    assert client.get("/api/v1/gallery", headers={"Authorization": f"Bearer {key}"}).status_code == 401


# ---- limits ----------------------------------------------------------------------------------------------
def test_a_key_over_its_rate_gets_429_with_retry_after(client, home, monkeypatch) -> None:
    monkeypatch.setenv("VISION_LAB_API_RATE", "2")
    monkeypatch.setenv("VISION_LAB_API_BURST", "2")
    limits.reset()
    try:
        quick = key_for(Workspace.local(), "quick")
        answers = [client.get("/api/v1/gallery", headers=quick) for _ in range(4)]
        assert [a.status_code for a in answers][:2] == [200, 200] and answers[-1].status_code == 429
        assert int(answers[-1].headers["retry-after"]) >= 1 and "calls a second" in answers[-1].json()["error"]
    finally:
        monkeypatch.undo()
        limits.reset()


def test_a_full_queue_is_answered_at_once_never_left_to_hang(client, mine) -> None:
    pool = limits.pool()
    held = [pool.slot() for _ in range(pool.capacity)]
    for slot in held:
        slot.__enter__()
    try:
        answer = client.post("/api/v1/faces", headers=mine, files=photo())
        assert answer.status_code == 429 and answer.headers["retry-after"] == "1"
    finally:
        for slot in held:
            slot.__exit__(None, None, None)
    assert client.get("/api/v1/gallery", headers=mine).status_code == 200


def test_the_rate_limiter_refills_and_a_pool_slot_is_given_back() -> None:
    now = [0.0]
    limiter = limits.RateLimiter(2, 2, clock=lambda: now[0])
    limiter.take("k"), limiter.take("k")
    with pytest.raises(limits.Busy):
        limiter.take("k")
    now[0] += 0.5
    limiter.take("k")
    pool = limits.WorkerPool(1, 0)
    with pool.slot():
        with pytest.raises(limits.Busy):
            pool.slot().__enter__()
    with pool.slot():
        pass
    pool.shutdown()


# ---- hostile bodies --------------------------------------------------------------------------------------
def deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HOSTILE = {  # name -> (body, content type, status)
    "text body": (b"hello", "text/plain", 415),
    "no content type": (b"\xff\xd8\xff", "", 415),
    "json list": (b"[1, 2]", "application/json", 400),
    "json 100k deep": (deep_json(100_000), "application/json", 400),
    "json broken": (b'{"photo": "', "application/json", 400),
    "json photo not text": (b'{"photo": 12}', "application/json", 400),
    "json bad base64": (b'{"photo": "***"}', "application/json", 400),
    "json extra field": (b'{"photo": "", "settings": {}}', "application/json", 400),
    "multipart no boundary": (b"--x\r\n", "multipart/form-data", 400),
    "multipart cut short": (b'--b\r\nContent-Disposition: form-data; name="photo"; filename="a"\r\n\r\nabc',
                            "multipart/form-data; boundary=b", 400),
    "multipart other field": (*multipart({"score_threshold": ("x", b"0.5")}), 400),
    "multipart no photo": (b"--b--\r\n", "multipart/form-data; boundary=b", 400),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_bodies_get_a_4xx_with_a_message(client, mine, name: str) -> None:
    body, kind, status = HOSTILE[name]
    answer = client.post("/api/v1/faces", headers={**mine, "Content-Type": kind}, content=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] and "Traceback" not in answer.text


def test_a_body_over_the_cap_is_refused_before_it_is_read(client, mine) -> None:
    """Declared too large: 413 at once; sent too large without a length (chunked): 413 as soon as it passes."""
    huge = json.dumps({"photo": "A" * (limits.body_cap(1) + 10)}).encode()
    declared = client.post("/api/v1/faces", headers={**mine, "Content-Type": "application/json"}, content=huge)
    chunked = client.post("/api/v1/faces", headers={**mine, "Content-Type": "application/json"},
                          content=iter([huge[i:i + 2**20] for i in range(0, len(huge), 2**20)]))
    assert declared.status_code == chunked.status_code == 413
    assert "limit" in declared.json()["error"]


@pytest.mark.slow
def test_every_file_of_the_bad_file_corpus_is_refused_or_used_as_the_uploaders_do(client, mine, real_model) -> None:
    """The uploaders' corpus (tests/test_bad_inputs.py) through /classify: refused ones get a 4xx naming the
    file, odd but valid ones are classified; never a 5xx."""
    from test_bad_inputs import corpus

    real_model("mobilenet_v2_quant_tflite")
    outcomes = {}
    for name, (data, verdict) in corpus().items():
        body, kind = multipart({"photo": (name.replace('"', "'").replace("\n", " "), data)})
        answer = client.post("/api/v1/classify", headers={**mine, "Content-Type": kind}, content=body)
        outcomes[name] = (answer.status_code, verdict)
    wrong = {n: o for n, o in outcomes.items() if (o[0] == 200) != (o[1] != "refuse") or o[0] >= 500}
    assert wrong == {}


# ---- the OpenAPI document and fuzzing from it ------------------------------------------------------------
def test_the_document_is_openapi_3_1_and_lists_every_call_and_setting(client) -> None:
    from vision_backend import models
    from vision_backend.api.routes import OPERATIONS

    document = client.get("/api/v1/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert {(p, m.upper()) for p, ms in document["paths"].items() for m in ms} == \
        {(api.PREFIX + op.path, op.method) for op in OPERATIONS}
    faces = {p["name"]: p["schema"] for p in document["paths"]["/api/v1/faces"]["post"]["parameters"]}
    assert faces["model"]["enum"] == [n for n, m in models.GROUPS["face detector"].items() if m.ready()]
    assert faces["min_face_size"] == {"type": "integer", "minimum": 8, "maximum": 200}
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and "POST /api/v1/projects/{name}/predict" in docs.text


@pytest.mark.slow
def test_fuzzing_every_call_from_the_document_finds_no_5xx_and_no_broken_promise(client, mine, real_model) -> None:
    """A short run of what ``bench/api.py`` runs at length: every operation, valid and invalid cases."""
    import schemathesis

    real_model("yunet")
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", client.app)
    found = fuzz(schema, mine["Authorization"].split()[1], jpeg(FACES), examples=4)
    assert found.cases >= 4 * 13 and found.server_errors == 0, found.statuses
    assert found.failures == []


# ---- the real server ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_streamlit_run_serves_the_api_beside_the_pages(tmp_path: Path, real_model) -> None:
    """``streamlit run app.py``: the pages and the API on one port, sharing the process."""
    import urllib.request

    from browser_tools import streamlit_server

    real_model("yunet")
    home = tmp_path / "home"
    key = api_keys.KeyRing(Workspace.at(home)).create("server", True, "test")
    with streamlit_server(home, tmp_path) as server:
        page = urllib.request.urlopen(f"{server.url}/", timeout=60).read()
        load = hammer(server.url, "/api/v1/faces", [key], [jpeg(FACES)], clients=2, calls=8)
        with urllib.request.urlopen(f"{server.url}/api/v1/openapi.json", timeout=60) as document:
            assert json.load(document)["openapi"] == "3.1.0"
    assert b"<div id=\"root\">" in page or b"streamlit" in page.lower()
    assert load.statuses == {200: 8}, server.log()[-2000:]


# ---- the pages ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_keys_page_makes_a_key_once_lists_it_and_revokes_it(client, home) -> None:
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    app.run()
    app.switch_page("pages/api_keys.py").run()
    app.text_input[0].input("page key")
    app.button[0].click().run()
    shown = [c.value for c in app.code if c.value.startswith("vl_")]
    assert len(shown) == 1 and not app.exception
    assert client.get("/api/v1/gallery", headers={"Authorization": f"Bearer {shown[0]}"}).status_code == 200
    app.run()
    assert not [c.value for c in app.code if c.value.startswith("vl_")]  # shown once
    app.selectbox(key="api_revoke_name").select("page key")
    app.button(key="api_revoke").click().run()
    assert client.get("/api/v1/gallery", headers={"Authorization": f"Bearer {shown[0]}"}).status_code == 401


def test_home_shows_a_curl_and_python_example_for_your_own_project(colours) -> None:
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    app.run()
    examples = [c.value for c in app.code if "/api/v1/" in c.value]
    assert not app.exception and len(examples) == 2
    assert "curl" in examples[0] and "/api/v1/projects/Colours/predict" in examples[0]
    assert "requests.post(" in examples[1] and "VISION_LAB_KEY" in examples[1]
