"""Cold load time of every ready model (fresh process each), the memory of the ONNX ImageNet classifier on its
own, and intake of a 12-megapixel JPEG.

``load_NAME_cold_ms``: ``models.get(NAME).runtime()`` in a fresh process whose engine libraries (TensorFlow,
Keras, ONNX Runtime, LiteRT, mtcnn, dlib) are already imported, so the figure is the model's own cost; a model
with several files to load from (Viola-Jones's cascades) also each under its own name, ``load_NAME_VARIANT_cold_ms``.
``onnx_classifier_load_rss_mb``: peak resident memory of a fresh process that imports vision_backend, loads the
first ImageNet classifier that runs on ONNX Runtime alone and classifies one photo (issue #17: under 250 MB; it
needs neither Keras nor TensorFlow). It is the process's own high-water mark (``VmHWM``), not ``getrusage``'s ``ru_maxrss``, which a
child inherits from its parent on Linux.

python bench/foundation.py [--quick]
"""

from __future__ import annotations

import io
import statistics

import numpy as np
from PIL import Image

from _harness import CHILD_PEAK_RSS_MB, Bench, in_fresh_process

from vision_backend import models  # noqa: E402
from vision_backend.intake import read_image  # noqa: E402

COLD_LOAD = """
import json, time
from vision_backend import engines, models
engines.warm_up(background=False)
from ai_edge_litert.interpreter import Interpreter
model = models.get({name!r})
start = time.perf_counter()
model.runtime({variant!r})
print(json.dumps((time.perf_counter() - start) * 1000))
"""
ONNX_CLASSIFIER = """
import json, sys
from vision_backend import models, samples
prediction = models.get({name!r}).classify([samples.load_sample("Cat, Chelsea (scikit-image)")])[0]
assert "keras" not in sys.modules and "tensorflow" not in sys.modules, "the ONNX classifier imported Keras"
print(json.dumps({peak}))
""".replace("{peak}", CHILD_PEAK_RSS_MB)


def cold_loads(model) -> list[tuple[str, str | None]]:
    """(figure, variant) of each cold load to time: the model, and each of its files by its name where it has
    several to choose from."""
    variants = model.variants()
    more = [(f"load_{model.name}_{v}_cold_ms", v) for v in variants] if len(variants) > 1 else []
    return [(f"load_{model.name}_cold_ms", None), *more]


def twelve_megapixel_jpeg() -> bytes:
    import skimage.data

    photo = Image.fromarray(skimage.data.astronaut()).resize((4000, 3000), Image.Resampling.BICUBIC)
    noise = np.random.default_rng(0).integers(-12, 12, (3000, 4000, 3))
    photo = Image.fromarray(np.clip(np.asarray(photo).astype(int) + noise, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    bench = Bench("foundation", __doc__)
    for model in (m for m in models.all_models().values() if m.ready()):
        with bench.about(model.name):
            for figure, variant in cold_loads(model):
                code = COLD_LOAD.format(name=model.name, variant=variant)
                bench.record(figure, statistics.median(in_fresh_process(code) for _ in range(bench.repeats(3, 1))),
                             "ms")
    onnx_only = next((c for c in models.GROUPS["classifier"].values() if c.engines == ("onnx",) and c.ready()), None)
    if onnx_only is not None:
        with bench.about(onnx_only.name):
            rss = [in_fresh_process(ONNX_CLASSIFIER.replace("{name!r}", repr(onnx_only.name)))
                   for _ in range(bench.repeats(3, 1))]
            bench.record("onnx_classifier_load_rss_mb", statistics.median(rss), "MB")
    data = twelve_megapixel_jpeg()
    bench.record("intake_12mp_jpeg_ms", bench.time(lambda: read_image(data, "12mp.jpg"), bench.repeats(7, 3)), "ms")
    bench.record("intake_12mp_jpeg_mb", len(data) / 2**20, "MB")


if __name__ == "__main__":
    main()
