"""Pretrained CNNs per ready model and engine: batch-1 latency, batch-16 throughput, cold load, peak memory.

python bench/pretrained.py [--quick]

Cold load and peak memory come from a fresh subprocess per model/engine (the engine library
imported first, so the figure is the model's own cost). The float Keras MobileNetV2 base is
compared with this machine's floor: its FLOPs / ~190 GFLOP/s of FP32 matrix work on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import ROOT, Recorder, median_ms

from vision_backend import classification as cl  # noqa: E402
from vision_backend import models, samples  # noqa: E402

MACHINE_GFLOPS = 190.0
MOBILENET_V2_GFLOPS = 0.6  # 300 M multiply-adds per 224x224 image (Sandler et al. 2018)

PROBE = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np
{engine_import}
from vision_backend import classification as cl, models, samples
started = time.perf_counter()
{load}
load_s = time.perf_counter() - started
for _ in range(5):
    run()
print(json.dumps({{"load_s": load_s, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def probe(engine_import: str, load: str) -> dict:
    code = PROBE.format(root=str(ROOT), engine_import=engine_import, load=load)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 7 if args.quick else 25
    record = Recorder("pretrained")
    photos = [samples.load_sample(n) for n in samples.sample_names()][:16]
    photos = (photos * 16)[:16]
    imports = {"keras": "import keras", "onnx": "import onnxruntime", "tflite": "import tensorflow"}

    for key, classifier in cl.CLASSIFIERS.items():
        if not classifier.card.ready():
            continue
        for engine in classifier.engines:
            runner = cl.load_runner(classifier, engine)
            one = classifier.prepare(photos[:1])
            sixteen = classifier.prepare(photos)
            stem = f"{engine}_{key}"
            record(f"{stem}_b1_ms", median_ms(lambda: runner.run(one), repeats, warmup=3), "ms")
            ms16 = median_ms(lambda: runner.run(sixteen), max(3, repeats // 4), warmup=1)
            record(f"{stem}_b16_images_per_s", 16000 / ms16, "images/s")
            found = probe(imports[engine], f"runner = cl.load_runner(cl.CLASSIFIERS[{key!r}], {engine!r})\n"
                                           f"x = cl.CLASSIFIERS[{key!r}].prepare([samples.load_sample({samples.sample_names()[0]!r})])\n"
                                           "run = lambda: runner.run(x)")
            record(f"{stem}_cold_load_s", found["load_s"], "s")
            record(f"{stem}_peak_rss_mb", found["rss_mb"], "MB")

    # the real float Keras base, and its ONNX conversion
    base = models.load("mobilenet_v2_notop")
    batch16 = cl.keras_preprocess("MobileNetV2")(np.stack([cl.resize(p, 224) for p in photos]))
    batch1 = batch16[:1]
    record("keras_mobilenet_v2_notop_b1_ms", median_ms(lambda: base.predict_on_batch(batch1), repeats, warmup=3), "ms")
    ms16 = median_ms(lambda: base.predict_on_batch(batch16), max(3, repeats // 4), warmup=1)
    keras_rate = 16000 / ms16
    record("keras_mobilenet_v2_notop_b16_images_per_s", keras_rate, "images/s")
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        session = models.onnx_session(cl.keras_to_onnx(base, Path(folder) / "base.onnx"))
        record("keras_to_onnx_mobilenet_v2_export_s", time.perf_counter() - started, "s")
        name = session.get_inputs()[0].name
        record("onnx_mobilenet_v2_notop_b1_ms", median_ms(lambda: session.run(None, {name: batch1}), repeats, warmup=3), "ms")
        ms16 = median_ms(lambda: session.run(None, {name: batch16}), max(3, repeats // 4), warmup=1)
        onnx_rate = 16000 / ms16
        record("onnx_mobilenet_v2_notop_b16_images_per_s", onnx_rate, "images/s")
        keras_maps, onnx_maps = np.asarray(base.predict_on_batch(batch16)), session.run(None, {name: batch16})[0]
        pooled = np.abs(keras_maps.mean(axis=(1, 2)) - onnx_maps.mean(axis=(1, 2))).max()
        record("keras_vs_onnx_mobilenet_v2_max_abs_diff", float(pooled), "abs (pooled 1280-d features)")
        record("keras_vs_onnx_mobilenet_v2_map_max_abs_diff", float(np.abs(keras_maps - onnx_maps).max()),
               "abs (7x7x1280 maps, values 0..6)")
    floor = MACHINE_GFLOPS / MOBILENET_V2_GFLOPS
    record("mobilenet_v2_floor_images_per_s", floor, "images/s")
    record("keras_mobilenet_v2_notop_b16_vs_floor", floor / keras_rate, "x slower")
    record("onnx_mobilenet_v2_notop_b16_vs_floor", floor / onnx_rate, "x slower")
    record.save()


if __name__ == "__main__":
    main()
