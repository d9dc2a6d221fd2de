"""Pretrained CNNs per ready model and engine: batch-1 latency beside the bare engine call, batch-16 throughput,
cold load, peak memory; the real Keras MobileNetV2 base against its ONNX conversion and this machine's floor.

``{engine}_{model}_classify_b1_vs_raw``: ``classify`` on one photo (its preprocessing, the engine under the
model's lock, the softmax/decoding to labels) over the bare interpreter/session/``predict_on_batch`` call on
the already preprocessed batch. Cold load and peak memory come from a fresh subprocess per model and engine
(the engine library imported first, so the figure is the model's own cost). Peak memory is the process's own
high-water mark (``VmHWM``): ``getrusage``'s ``ru_maxrss`` in a child starts at its parent's peak on Linux
(it survives fork and exec), which is how the old figures read 690-973 MB for 3.6 MB int8 models. The float
Keras MobileNetV2 base is compared with this machine's floor: its FLOPs / ~190 GFLOP/s of FP32 matrix work
on 2 cores.

python bench/pretrained.py [--quick]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from _harness import CHILD_PEAK_RSS_MB, ROOT, Bench, in_fresh_process

from vision_backend import engines, samples  # noqa: E402
from vision_backend.classification import CLASSIFIERS  # noqa: E402
from vision_backend.convert import keras_to_onnx  # noqa: E402
from vision_backend.transfer.bases import MOBILENET_V2  # noqa: E402

MACHINE_GFLOPS = 190.0
MOBILENET_V2_GFLOPS = 0.6  # 300 M multiply-adds per 224x224 image (Sandler et al. 2018)
ENGINE_IMPORTS = {"keras": "engines.keras()", "onnx": "engines.onnxruntime()",
                  "tflite": "from ai_edge_litert.interpreter import Interpreter"}

PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
from vision_backend import engines, samples
{engine_import}
from vision_backend.classification import CLASSIFIERS
classifier = CLASSIFIERS[{name!r}]
started = time.perf_counter()
runner = classifier.runtime({engine!r})
load_s = time.perf_counter() - started
x = classifier.preprocess([samples.load_sample({photo!r})])
for _ in range(5):
    runner.run(x)
print(json.dumps({{"load_s": load_s, "rss_mb": {peak}}}))
"""


def probe(name: str, engine: str, photo: str) -> dict:
    """Cold load and peak memory of one classifier on one engine, in a fresh process."""
    return in_fresh_process(PROBE.format(root=str(ROOT), engine_import=ENGINE_IMPORTS[engine], name=name,
                                         engine=engine, photo=photo, peak=CHILD_PEAK_RSS_MB))


def bare_call(engine: str, model: Any, batch: np.ndarray) -> Callable[[], object]:
    """The engine's own call on a preprocessed batch of one, nothing around it."""
    if engine == "keras":
        return lambda: model.predict_on_batch(batch)
    if engine == "onnx":
        feed = {model.get_inputs()[0].name: batch}
        return lambda: model.run(None, feed)
    inp, out = model.get_input_details()[0], model.get_output_details()[0]
    tensor = batch.astype(inp["dtype"])

    def invoke() -> object:
        model.set_tensor(inp["index"], tensor)
        model.invoke()
        return model.get_tensor(out["index"])

    return invoke


def classifiers(bench: Bench, photos: list[np.ndarray]) -> None:
    for name, classifier in CLASSIFIERS.items():
        if not classifier.ready():
            continue
        for engine in classifier.engines:
            with bench.about(name):
                engine_figures(bench, classifier, engine, photos)


def engine_figures(bench: Bench, classifier: Any, engine: str, photos: list[np.ndarray]) -> None:
    """One classifier on one engine: batch of one and of 16, the classify call beside the bare one, a cold load."""
    name = classifier.name
    runner = classifier.runtime(engine)
    one, sixteen = classifier.preprocess(photos[:1]), classifier.preprocess(photos)
    stem = f"{engine}_{name}"
    bench.record(f"{stem}_b1_ms", bench.time(lambda: runner.run(one), bench.repeats(25, 7), warmup=3), "ms")
    ms16 = bench.time(lambda: runner.run(sixteen), bench.repeats(6, 3))
    bench.record(f"{stem}_b16_images_per_s", 16000 / ms16, "images/s")
    bench.compare(f"{stem}_classify_b1", lambda: classifier.classify(photos[:1], engine),
                  bare_call(engine, runner.model, one), repeats=bench.repeats(25, 7))
    found = probe(name, engine, samples.sample_names()[0])
    bench.record(f"{stem}_cold_load_s", found["load_s"], "s")
    bench.record(f"{stem}_peak_rss_mb", found["rss_mb"], "MB")


def keras_base_and_onnx(bench: Bench, photos: list[np.ndarray]) -> tuple[float, float]:
    """The real float base on Keras and converted to ONNX: speed and agreement. Returns both b16 rates."""
    base = MOBILENET_V2.runtime()
    batch16 = MOBILENET_V2.preprocess(photos)
    batch1 = batch16[:1]
    repeats = bench.repeats(25, 7)
    bench.record("keras_mobilenet_v2_notop_b1_ms", bench.time(lambda: base.predict_on_batch(batch1), repeats, 3), "ms")
    keras_rate = 16000 / bench.time(lambda: base.predict_on_batch(batch16), max(3, repeats // 4))
    bench.record("keras_mobilenet_v2_notop_b16_images_per_s", keras_rate, "images/s")
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        session = engines.onnx_session(keras_to_onnx(base, Path(folder) / "base.onnx"))
        bench.record("keras_to_onnx_mobilenet_v2_export_s", time.perf_counter() - started, "s")
        name = session.get_inputs()[0].name
        bench.record("onnx_mobilenet_v2_notop_b1_ms",
                     bench.time(lambda: session.run(None, {name: batch1}), repeats, 3), "ms")
        onnx_rate = 16000 / bench.time(lambda: session.run(None, {name: batch16}), max(3, repeats // 4))
        bench.record("onnx_mobilenet_v2_notop_b16_images_per_s", onnx_rate, "images/s")
        keras_maps, onnx_maps = np.asarray(base.predict_on_batch(batch16)), session.run(None, {name: batch16})[0]
    pooled = np.abs(keras_maps.mean(axis=(1, 2)) - onnx_maps.mean(axis=(1, 2))).max()
    bench.record("keras_vs_onnx_mobilenet_v2_max_abs_diff", float(pooled), "abs (pooled 1280-d features)")
    bench.record("keras_vs_onnx_mobilenet_v2_map_max_abs_diff", float(np.abs(keras_maps - onnx_maps).max()),
                 "abs (7x7x1280 maps, values 0..6)")
    return keras_rate, onnx_rate


def main() -> None:
    bench = Bench("pretrained", __doc__)
    photos = [samples.load_sample(n) for n in samples.sample_names()][:16]
    photos = (photos * 16)[:16]
    classifiers(bench, photos)
    with bench.about(MOBILENET_V2.name):
        keras_rate, onnx_rate = keras_base_and_onnx(bench, photos)
        floor = MACHINE_GFLOPS / MOBILENET_V2_GFLOPS
        bench.record("mobilenet_v2_floor_images_per_s", floor, "images/s")
        bench.record("keras_mobilenet_v2_notop_b16_vs_floor", floor / keras_rate, "x slower")
        bench.record("onnx_mobilenet_v2_notop_b16_vs_floor", floor / onnx_rate, "x slower")


if __name__ == "__main__":
    main()
