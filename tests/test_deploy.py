"""The multi-server deployment's services, for real: PostgreSQL, the SeaweedFS S3 server, HAProxy's
sticky cookie and failover in front of real HTTP servers, the whole `up`/`down` of deploy/services.py
with Streamlit replicas, and the Kubernetes example's wiring.

Every test starts its services in a run folder of its own and stops them in a finaliser, so a failing
test leaves nothing running.
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import ROOT
from deploy import services

DEPLOY = ROOT / "deploy"

BACKEND = '''
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, name = int(sys.argv[1]), sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok" if self.path == "/_stcore/health" else name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''


def need(*programs: str) -> None:
    """Skip where a program is missing; in CI (which installs them) that is a failure instead."""
    missing = [p for p in programs if not (shutil.which(p) or Path(f"/usr/sbin/{p}").exists()
                                           or glob.glob(f"/usr/lib/postgresql/*/bin/{p}"))]
    if not missing:
        return
    message = f"not installed: {', '.join(missing)} (apt-get install postgresql haproxy)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A run folder the postgres user may enter; whatever still runs there is stopped at the end."""
    path = services.make_run_dir("vision-lab-test-")
    yield path
    try:
        services.down(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def get(url: str, cookie: str | None = None) -> tuple[int, str, str | None]:
    """(status, body, SERVERID cookie set by the answer) for a GET, as a browser with ``cookie`` sends it."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("GET", parts.path or "/", headers={"Cookie": f"SERVERID={cookie}"} if cookie else {})
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
        cookies = [c for c in response.headers.get_all("Set-Cookie") or [] if c.startswith("SERVERID=")]
        return response.status, body, cookies[0].split(";")[0].split("=", 1)[1] if cookies else None
    finally:
        conn.close()


def processes_mentioning(text: str) -> list[str]:
    """Live processes whose command line or environment mentions ``text`` (zombies don't count)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        if int(proc.name) == os.getpid():
            continue
        try:
            if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            blob = proc.joinpath("cmdline").read_bytes() + proc.joinpath("environ").read_bytes()
        except (OSError, IndexError):
            continue
        if text.encode() in blob:
            found.append(f"{proc.name}: {proc.joinpath('cmdline').read_bytes()[:120]!r}")
    return found


def wait_for(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check()`` is true; fails the test after ``timeout``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"not within {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.mark.slow
def test_postgres_keeps_rows_for_the_app_role_and_refuses_a_wrong_password(run_dir: Path) -> None:
    need("initdb", "pg_ctl")
    import psycopg
    import sqlalchemy

    with services.postgres(run_dir) as pg:
        assert pg["url"].startswith("postgresql+psycopg://vision_lab:") and "@127.0.0.1:" in pg["url"]
        engine = sqlalchemy.create_engine(pg["url"])
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("CREATE TABLE photos (id serial PRIMARY KEY, name text NOT NULL)"))
            conn.execute(sqlalchemy.text("INSERT INTO photos (name) VALUES ('astronaut.jpg'), ('coffee.jpg')"))
        libpq_url = pg["url"].replace("+psycopg", "")
        with psycopg.connect(libpq_url) as conn:  # another connection sees the committed rows
            names = [row[0] for row in conn.execute("SELECT name FROM photos ORDER BY id")]
            assert names == ["astronaut.jpg", "coffee.jpg"]
            assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        engine.dispose()
        wrong = libpq_url.replace(libpq_url.split(":")[2].split("@")[0], "wrong-password")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(wrong, connect_timeout=5)
        pid = pg["pid"]
        assert services.load_state(run_dir)["postgres"]["pid"] == pid
    assert not services.alive(pid) and "postgres" not in services.load_state(run_dir)
    assert not (Path(pg["data"]) / "postmaster.pid").exists()


@pytest.mark.slow
def test_s3_puts_gets_lists_and_deletes_and_refuses_a_wrong_key(run_dir: Path) -> None:
    from botocore.exceptions import ClientError

    with services.s3(run_dir) as store:
        client = services.s3_client(store)
        bucket = store["bucket"]
        client.put_object(Bucket=bucket, Key="lab/photos/a.jpg", Body=b"\xff\xd8 first")
        client.put_object(Bucket=bucket, Key="lab/photos/b.jpg", Body=b"\xff\xd8 second" * 1000)
        assert client.get_object(Bucket=bucket, Key="lab/photos/a.jpg")["Body"].read() == b"\xff\xd8 first"
        listed = client.list_objects_v2(Bucket=bucket, Prefix="lab/photos/")
        assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [("lab/photos/a.jpg", 8),
                                                                       ("lab/photos/b.jpg", 9000)]
        client.delete_object(Bucket=bucket, Key="lab/photos/a.jpg")
        left = client.list_objects_v2(Bucket=bucket, Prefix="lab/")["Contents"]
        assert [o["Key"] for o in left] == ["lab/photos/b.jpg"]
        with pytest.raises(ClientError):
            client.get_object(Bucket=bucket, Key="lab/photos/a.jpg")
        intruder = services.s3_client({**store, "secret_key": "0" * 40})
        with pytest.raises(ClientError, match="SignatureDoesNotMatch|AccessDenied"):
            intruder.list_objects_v2(Bucket=bucket)
        pid, ports = store["pid"], store["ports"].values()
    assert not services.alive(pid) and "s3" not in services.load_state(run_dir)
    assert [p for port in ports for p in glob.glob(f"/tmp/seaweedfs-*-grpc-{port}.sock")] == []
    assert processes_mentioning(str(run_dir)) == []


def start_backends(run_dir: Path, replicas: int = 2) -> contextlib.AbstractContextManager[services.Cluster]:
    """A cluster of small real HTTP servers (each answers with its name) behind the real HAProxy."""
    need("haproxy")
    script = run_dir / "backend.py"
    script.write_text(BACKEND)
    return services.cluster(run_dir, replicas, command=[sys.executable, str(script), "{port}", "{name}"],
                            stores=False)


@pytest.mark.slow
def test_haproxy_keeps_a_browser_on_its_replica_and_moves_it_when_that_one_dies(run_dir: Path) -> None:
    with start_backends(run_dir) as lab:
        assert lab.servers() == {"r0": "UP", "r1": "UP"}
        first = [get(lab.url) for _ in range(4)]  # new browsers: round robin over both replicas
        assert {body for _, body, _ in first} == {"r0", "r1"}
        assert all(status == 200 and cookie == body for status, body, cookie in first)
        mine = first[0][1]
        assert all(get(lab.url, mine)[1] == mine for _ in range(10))  # the cookie sticks
        other = "r1" if mine == "r0" else "r0"

        killed_at = time.monotonic()
        lab.kill_replica(lab.replica_names().index(mine), signal.SIGKILL)
        status, body, cookie = get(lab.url, mine)  # redispatched, and told its new replica
        assert (status, body, cookie) == (200, other, other)
        wait_for(lambda: lab.servers()[mine].startswith("DOWN"), 2.5)
        assert time.monotonic() - killed_at < 3.0
        assert all(get(lab.url)[1] == other for _ in range(4))  # new browsers too

        lab.restart_replica(lab.replica_names().index(mine))
        wait_for(lambda: lab.servers()[mine] == "UP", 5.0)
        assert get(lab.url, mine)[1] == mine  # back on its own replica
        pids = [r["pid"] for r in lab.state["replicas"]] + [lab.state["haproxy"]["pid"]]
    assert not any(services.alive(pid) for pid in pids)
    assert processes_mentioning(str(run_dir)) == [] and services.status(run_dir) == {}


def test_a_replica_that_fails_to_start_is_reported_with_its_log_and_nothing_is_left(run_dir: Path) -> None:
    crash = [sys.executable, "-c", "import sys; print('no model file here: {name}'); sys.exit(3)"]
    reported = r"replica r0 exited before it was ready(.|\n)*no model file here: r0"  # with its log's tail
    with pytest.raises(services.ServiceError, match=reported):
        services.up(run_dir, replicas=2, command=crash, stores=False)
    assert services.status(run_dir) == {} and processes_mentioning(str(run_dir)) == []


def check_websockets(url: str, names: list[str], log: Path) -> None:
    """The app's websocket (/_stcore/stream) opens through HAProxy, on the replica the cookie names."""
    client = pytest.importorskip("websockets.sync.client")
    stream = url.replace("http://", "ws://") + "_stcore/stream"
    for name in names:
        with client.connect(stream, additional_headers={"Cookie": f"SERVERID={name}"}, open_timeout=10,
                            subprotocols=["streamlit"]) as ws:
            assert ws.response.status_code == 101
            assert ws.ping().wait(5)
        logged = f"streamlit/{name} "  # HAProxy logs the websocket's line when it closes
        wait_for(lambda logged=logged: any(logged in line and " 101 " in line and "/_stcore/stream" in line
                                           for line in log.read_text().splitlines()), 5.0)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DEPLOY / "services.py"), *args], capture_output=True, text=True,
                          timeout=300, check=False)


def check_replica_environment(state: dict, run_dir: Path) -> None:
    """Every replica got the shared stores' variables and a home of its own in the run folder."""
    for replica in state["replicas"]:
        raw = Path(f"/proc/{replica['pid']}/environ").read_bytes().split(b"\0")
        env = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
        assert env["VISION_LAB_DATABASE_URL"] == state["postgres"]["url"]
        assert env["VISION_LAB_BLOBS"] == "s3://vision-lab/lab"
        assert env["VISION_LAB_S3_ENDPOINT"] == state["s3"]["endpoint"]
        assert env["AWS_ACCESS_KEY_ID"] == state["s3"]["access_key"]
        assert env["VISION_LAB_SECRET"] == env["STREAMLIT_SERVER_COOKIE_SECRET"] == state["secret"]
        assert env["VISION_LAB_HOME"] == str(run_dir / "replicas" / replica["name"] / "home")


@pytest.mark.slow
def test_the_command_line_brings_up_the_whole_deployment_and_down_leaves_nothing(run_dir: Path) -> None:
    need("initdb", "pg_ctl", "haproxy")
    started = cli("up", "--replicas", "2", "--dir", str(run_dir))
    assert started.returncode == 0, started.stderr
    state = services.load_state(run_dir)
    url = state["haproxy"]["url"]
    assert get(url + "_stcore/health")[:2] == (200, "ok")
    status, body, cookie = get(url)
    assert status == 200 and "<html" in body.lower() and cookie in ("r0", "r1")
    check_replica_environment(state, run_dir)
    check_websockets(url, ["r0", "r1"], Path(state["haproxy"]["log"]))
    assert cli("up", "--dir", str(run_dir)).returncode == 2  # refuses: already up
    shown = cli("status", "--dir", str(run_dir))
    assert shown.returncode == 0 and shown.stdout.count("running") == 5, shown.stdout
    exported = cli("env", "--dir", str(run_dir)).stdout
    assert f"export VISION_LAB_DATABASE_URL={state['postgres']['url']}" in exported

    stopped = cli("down", "--dir", str(run_dir))
    assert stopped.returncode == 0 and "haproxy, replica r0, replica r1, s3, postgres" in stopped.stdout
    pids = [state[k]["pid"] for k in ("postgres", "s3", "haproxy")] + [r["pid"] for r in state["replicas"]]
    assert not any(services.alive(pid) for pid in pids)
    assert processes_mentioning(str(run_dir)) == []
    assert cli("status", "--dir", str(run_dir)).returncode == 3


def test_the_haproxy_config_is_valid_and_has_what_failover_needs(tmp_path: Path) -> None:
    need("haproxy")
    text = services.render_haproxy(8080, [("r0", 8501), ("r1", 8502)], tmp_path / "admin.sock")
    for line in ("cookie SERVERID insert indirect nocache", "option redispatch", "retries 3",
                 "option httpchk GET /_stcore/health", "timeout tunnel 1h", "balance roundrobin",
                 "inter 500ms", "fall 2", "bind 127.0.0.1:8080", "server r1 127.0.0.1:8502 cookie r1"):
        assert line in text
    (tmp_path / "haproxy.cfg").write_text(text)
    checked = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True,
                             text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_kubernetes_example_is_wired_together() -> None:
    yaml = pytest.importorskip("yaml")
    folder = DEPLOY / "k8s"
    docs = {d["kind"]: d for f in sorted(folder.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())}
    assert sorted(docs["Kustomization"]["resources"]) == sorted(f.name for f in folder.glob("*.yaml")
                                                                 if f.name != "kustomization.yaml")
    pod = docs["Deployment"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert docs["Deployment"]["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert docs["Service"]["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/_stcore/health", "port": "http"}
    assert {p["name"] for p in container["ports"]} == {"http"}
    secret = docs["Secret"]
    assert {s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s} == {secret["metadata"]["name"]}
    keys = {"VISION_LAB_DATABASE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "VISION_LAB_SECRET"}
    assert keys <= secret["stringData"].keys()
    assert {"VISION_LAB_BLOBS", "VISION_LAB_S3_ENDPOINT"} <= docs["ConfigMap"]["data"].keys()
    notes = docs["Ingress"]["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    backend = docs["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == docs["Service"]["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in docs["Service"]["spec"]["ports"]}
