"""A frozen base on ONNX Runtime: the Keras base converted once, its pixel scaling inside, one output per tap,
and run one lane a core.

Converted through the repository's one Keras-to-ONNX path (``convert.keras_to_onnx``: Keras's
export, tf2onnx), then tidied with the ``onnx`` package: the input is ``image`` (raw 0-255 RGB, NHWC, any
batch), each output is named after its tap, so a detector's head can be appended to the graph by those
names (``own_detection.graph``). ONNX Runtime folds the batch-norms, fuses ReLU6 and the residual adds into
the convolutions and runs them in its blocked NCHWc layout, with a single transpose at the input (its
default ``ORT_ENABLE_ALL``; the graph unoptimised is 1.9x slower, without the NCHWc layout 1.6x).

A batch runs as :class:`Lanes`: cut into one part a core, each part on a one-thread session of its own, side by
side (as the batch command line's lanes: a network's layers are too short for two threads to share without
waiting on each other), :data:`CHUNK` photos a run. On this 2-core VM, 16 photos at 224 took 1.9-2.0x the sgemm
floor (16 x 0.6 GFLOP at numpy's float32 rate) on one session of two threads (2.1-2.3x with spinning on), 1.4x in
lanes of 8 photos a run and 1.2x in lanes of 2 (medians of 5-7 runs; ``bench/own_detector.py``). Denormals
flushed to zero gained nothing more once runs were small.
"""

from __future__ import annotations

import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from vision_backend import engines, paths
from vision_backend.storage import atomic_write

INPUT = "image"
CHUNK = 2
"""Photos a lane runs at once: two photos' activations stay in the core's caches where eight spill to memory
(16 photos at 224 in 1.20x the sgemm floor in chunks of 2, 1.22x of 4, 1.44x of 8; median of 7, a quiet VM)."""
_POOL: list[ThreadPoolExecutor] = []
_POOL_LOCK = threading.Lock()


def lane_pool() -> ThreadPoolExecutor:
    """One thread a core, shared by every base's lanes (made on first use)."""
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="base-lane"))
        return _POOL[0]


class Lanes:
    """A base's graph as one one-thread session a core (for batches) and one session on every core (one photo)."""

    def __init__(self, graph: bytes):
        cores = os.cpu_count() or 2
        self.graph, self.lock, self.single = graph, threading.Lock(), None
        self.sessions = [engines.onnx_session(graph, threads=1) for _ in range(cores)]

    def whole(self) -> Any:
        """The every-core session for one photo, made on first use."""
        with self.lock:
            if self.single is None:
                self.single = engines.onnx_session(self.graph)
            return self.single

    def run(self, outputs: list[str], items: Sequence[Any],
            prepare: Callable[[Sequence[Any]], np.ndarray] = np.asarray) -> list[np.ndarray]:
        """The outputs for a batch: one part a lane, each part prepared (photos resized: OpenCV lets go of the GIL,
        so that runs side by side too) and run in its lane, joined in order."""
        cut = np.array_split(np.arange(len(items)), len(self.sessions))
        parts = [items[int(rows[0]) : int(rows[-1]) + 1] for rows in cut if len(rows)]  # slices: an array's are views
        if len(parts) < 2:
            return self.whole().run(outputs, {INPUT: prepare(items)})
        done = list(lane_pool().map(lambda s, part: _in_chunks(s, outputs, prepare(part)), self.sessions, parts))
        return [np.concatenate(maps) for maps in zip(*done)]


def _in_chunks(session: Any, outputs: list[str], batch: np.ndarray) -> list[np.ndarray]:
    """``batch`` through ``session`` :data:`CHUNK` photos a run, the outputs joined."""
    runs = [session.run(outputs, {INPUT: batch[i : i + CHUNK]}) for i in range(0, len(batch), CHUNK)]
    return [np.concatenate(maps) for maps in zip(*runs)]


def keras_probe(base: Any, taps: tuple[str, ...], size: int) -> Any:
    """A flat Keras model: raw 0-255 RGB (size x size) in, the base's own scaling, the maps of ``taps`` out."""
    keras = engines.keras()
    inputs = keras.Input((size, size, 3), name=INPUT)
    copy = base.rebuilt(base.scaling.keras_layers(inputs))
    return keras.Model(inputs, [copy.get_layer(t).output for t in taps], name=f"{base.name}_features")


def rename_outputs(graph: Any, names: tuple[str, ...]) -> Any:
    """The graph's outputs renamed, in order, to ``names`` (every node reading or writing them follows)."""
    renamed = {output.name: name for output, name in zip(graph.graph.output, names)}
    for node in graph.graph.node:
        node.input[:] = [renamed.get(n, n) for n in node.input]
        node.output[:] = [renamed.get(n, n) for n in node.output]
    for output in graph.graph.output:
        output.name = renamed.get(output.name, output.name)
    for value in (*graph.graph.input, *graph.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    return graph


def convert_base(base: Any, taps: tuple[str, ...], size: int, path: Path) -> Path:
    """Write ``path``: the base at ``size`` with the outputs ``taps``, as ONNX (about 8 s for MobileNetV2)."""
    import onnx

    from vision_backend.convert import keras_to_onnx

    model = keras_probe(base, taps, size)
    with tempfile.TemporaryDirectory(dir=paths.app_dir("tmp")) as folder:
        graph = onnx.load(str(keras_to_onnx(model, Path(folder) / "base.onnx")))
    if [i.name for i in graph.graph.input] != [INPUT]:
        raise RuntimeError(f"the converted base takes {[i.name for i in graph.graph.input]}, not [{INPUT!r}]")
    return atomic_write(path, rename_outputs(graph, taps).SerializeToString())
