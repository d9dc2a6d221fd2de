"""Batch command line: photos per second over 1,000 JPEGs at 640x480 (reading and decoding included), Ray beside
the in-process run, and the batch model step beside a bare onnxruntime session.

The photos are made from the staged ones (each cut a little differently, then resized) in a temporary folder.
``batch_*_photos_per_s``: the in-process runner with the pages' default models at their default settings (each
model's role says it: classify, faces, objects), rows written to a JSON Lines file, counted after the first batch
(the models' loading is start-up, not throughput); ``_spinning_`` the same with ``--spinning`` (one engine on
every core, spinning on, instead of a one-thread engine a lane). ``batch_ray_*``: the same classify run on a local Ray with
this machine's cores: its start-up (Ray, actors, models, first batch) and its rate after that over the local
rate. ``batch_classify_vs_raw``: the batch path's model step on a prepared batch of 16 (its lanes' runs, softmax,
top 5) over the classifier's own engine loaded with its defaults (every core) running the same blob, timed in
alternating blocks.

python bench/batch.py [--quick]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from _harness import Bench

from vision_backend import samples  # noqa: E402
from vision_backend.batch import tasks  # noqa: E402
from vision_backend.batch.local import run_local  # noqa: E402
from vision_backend.batch.output import open_writer  # noqa: E402
from vision_backend.intake import encode_jpeg  # noqa: E402

BATCH = 16


def make_photos(folder: Path, count: int, seed: int = 0) -> list[str]:
    """``count`` 640x480 JPEGs cut from the staged photos at random (80-100% of each side)."""
    rng = np.random.default_rng(seed)
    names = [n for n in samples.sample_names() if n.endswith((".jpg", ".png")) and "(" not in n]
    sources = [samples.load_sample(n) for n in names]
    paths = []
    for i in range(count):
        image = sources[i % len(sources)]
        height, width = image.shape[:2]
        h, w = (int(side * rng.uniform(0.8, 1.0)) for side in (height, width))
        top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        photo = cv2.resize(image[top : top + h, left : left + w], (640, 480), interpolation=cv2.INTER_AREA)
        path = folder / f"{i:04d}_{names[i % len(names)].rsplit('.', 1)[0]}.jpg"
        path.write_bytes(encode_jpeg(photo, 90))
        paths.append(str(path))
    return paths


def throughput(task: tasks.Task, photos: list[str], out: Path, ray: bool = False):
    """One run over every photo, rows to a JSON Lines file; the run's summary."""
    with open_writer(out, task.columns()) as writer:
        if ray:
            from vision_backend.batch.ray_runner import run_ray

            return run_ray(task, photos, writer.write, batch_size=BATCH, progress=False)
        return run_local(task, photos, writer.write, batch_size=BATCH, progress=False)


def model_step_vs_raw(bench: Bench, photos: list[str]) -> None:
    """The batch path's model step beside a default session's bare ``run`` on the same blob and batch size."""
    task = tasks.Classify().resolve(photos)
    task.load()
    prepared = [task.read(p) for p in photos[:BATCH]]
    blob = np.stack([p.blob for p in prepared])
    bare = task.classifier.load_engine(task.classifier.batch_engine)
    with bench.about(task.model):
        bench.compare_in_blocks("batch_classify", lambda: task.infer(prepared), lambda: bare.run(blob),
                                rounds=bench.repeats(5, 2), per_block=bench.repeats(15, 5))


def main() -> None:
    bench = Bench("batch", __doc__)
    with tempfile.TemporaryDirectory() as folder:
        photos = make_photos(Path(folder), bench.repeats(1000, 160))
        model_step_vs_raw(bench, photos)
        runs = {"classify": tasks.Classify, "faces": tasks.Faces, "objects": tasks.Objects}
        local = {}
        for figure, task in runs.items():
            with bench.about(task().model):
                local[figure] = throughput(task().resolve(photos), photos, Path(folder) / f"{figure}.jsonl")
                bench.record(f"batch_{figure}_photos_per_s", local[figure].steady_rate, "photos/s")
                print(f"# {local[figure].text()}")
                spinning = throughput(task(spinning=True).resolve(photos), photos, Path(folder) / f"{figure}_s.jsonl")
                bench.record(f"batch_{figure}_spinning_photos_per_s", spinning.steady_rate, "photos/s")
        remote = throughput(tasks.Classify().resolve(photos), photos, Path(folder) / "ray.jsonl", ray=True)
        print(f"# ray: {remote.text()}")
        bench.record("batch_ray_startup_s", remote.first_s, "s")
        bench.record("batch_ray_photos_per_s", remote.steady_rate, "photos/s")
        bench.record("batch_ray_vs_local_ratio", remote.steady_rate / local["classify"].steady_rate, "ratio")


if __name__ == "__main__":
    main()
