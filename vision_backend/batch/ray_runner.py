"""The same task on Ray Data: paths -> ``ray.data`` -> ``map_batches`` on an actor pool -> the same rows, in order.

Each actor loads the task's models once (missing files are fetched into its node's cache on first
use, as a page does) and turns batches of paths into rows with the very code the local run uses;
rows travel back as JSON text, so each keeps its own fields, and Ray keeps the photos' order, so
the output file is the local run's. Without an address Ray starts here, on this machine's cores and
the loopback only; with one (``ray://HOST:10001``, ``HOST:6379`` from ``ray start --head``, or
``auto`` inside a cluster's pod, e.g. KubeRay's head) the work goes to that cluster, whose nodes must
read the photos at the same paths (a shared file system) and have the requirements installed; this
package travels with the job.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from vision_backend.batch.local import Summary, Write
from vision_backend.batch.tasks import Task

PACKAGE = Path(__file__).resolve().parents[1]
"""``vision_backend`` itself, shipped to every worker (Ray's ``py_modules``)."""


class PhotoWorker:
    """One Ray actor: the task's models loaded once, then batches of paths in, rows (as JSON) out."""

    def __init__(self, task: Task, threads: int):
        task.threads = threads
        task.load()
        self.task = task

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = self.task.run([str(p) for p in batch["path"]])
        seen: set[str] = set()
        first = []
        for row in rows:  # marks each photo's first row, so the driver counts photos, not rows
            first.append(row["path"] not in seen)
            seen.add(row["path"])
        return {"row": np.array([json.dumps(r) for r in rows], dtype=object), "first": np.array(first, bool)}


def connect(address: str | None) -> dict[str, Any] | None:
    """Ray joined at ``address`` (or started here, on the loopback) with this package uploaded for its
    workers; returns the runtime environment the actors need on top (None when the job has the package).

    A Ray someone else started in this process (a test, a notebook) is used as it is: its actors on this
    machine find the package through ``PYTHONPATH``.
    """
    if address is None:  # one machine: bind to 127.0.0.1, not the machine's network address
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                 runtime_env={"py_modules": [str(PACKAGE)]})
        return None
    path = os.pathsep.join(p for p in (str(PACKAGE.parent), os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path}}


def dataset(task: Task, paths: list[str], batch_size: int, actors: int, cpus: int, env: dict | None) -> Any:
    """The pipeline: one block a batch, each batch to an actor that holds the loaded models."""
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # the progress bar and summary say what matters
    warnings.filterwarnings("ignore", category=UserWarning, module="ray.data")
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    items = ray.data.from_items([{"path": p} for p in paths],
                                override_num_blocks=max(1, -(-len(paths) // batch_size)))
    return items.map_batches(PhotoWorker, batch_size=batch_size, batch_format="numpy",
                             fn_constructor_kwargs={"task": task, "threads": cpus},
                             compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=cpus,
                             runtime_env=env)


def run_ray(task: Task, paths: list[str], write: Write, address: str | None = None, batch_size: int = 16,
            actors: int = 0, cpus_per_actor: int = 1, progress: bool = True, skipped: int = 0) -> Summary:
    """``task`` over ``paths`` on Ray; rows reach ``write`` in the photos' order. ``actors`` defaults to
    the cluster's CPUs over ``cpus_per_actor`` (each actor runs that many lanes)."""
    from tqdm import tqdm

    started = time.perf_counter()
    env = connect(address)
    import ray

    actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_actor))
    summary = Summary.of(task, skipped)
    pipeline = dataset(task, paths, batch_size, actors, cpus_per_actor, env)
    with tqdm(total=len(paths), unit="photo", disable=None if progress else True, desc=f"{task.name} (ray)") as bar:
        for batch in pipeline.iter_batches(batch_size=None, batch_format="numpy"):
            rows = [json.loads(text) for text in batch["row"]]
            write(rows)
            done = int(batch["first"].sum())
            summary.add(done, rows, time.perf_counter() - started)
            bar.update(done)
    summary.seconds = time.perf_counter() - started
    return summary
