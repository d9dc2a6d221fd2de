"""Cold load time of every ready model (fresh process each), and intake of a 12-megapixel JPEG.

python bench/foundation.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys

import numpy as np
from PIL import Image

from _common import ROOT, Recorder, median_ms

from vision_backend import models  # noqa: E402
from vision_backend.intake import read_image  # noqa: E402

ENGINE_IMPORTS = {
    "keras_app": "import keras", "tflite": "import tensorflow", "onnxruntime": "import onnxruntime",
    "cv2_cascade": "import cv2", "cv2_yunet": "import cv2", "dlib_hog": "import dlib", "mtcnn": "import mtcnn",
    "dlib_face_recognition": "import dlib", "dlib_shape_predictor": "import dlib",
}
CHILD = """
import json, time, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
{imports}
from vision_backend import models
start = time.perf_counter()
models.load({name!r})
print(json.dumps((time.perf_counter() - start) * 1000))
"""


def cold_load_ms(card: models.ModelCard) -> float:
    """Load time in a fresh process, the engine's library already imported (that is not the model's cost)."""
    code = CHILD.format(imports=ENGINE_IMPORTS.get(card.loader, ""), name=card.name)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def twelve_megapixel_jpeg() -> bytes:
    import skimage.data

    photo = Image.fromarray(skimage.data.astronaut()).resize((4000, 3000), Image.Resampling.BICUBIC)
    noise = np.random.default_rng(0).integers(-12, 12, (3000, 4000, 3))
    photo = Image.fromarray(np.clip(np.asarray(photo).astype(int) + noise, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one cold load per model, 3 intake runs")
    args = parser.parse_args()
    record = Recorder("foundation")
    repeats = 1 if args.quick else 3
    for card in models.CARDS:
        if card.ready() and card.loader in ENGINE_IMPORTS:
            times = [cold_load_ms(card) for _ in range(repeats)]
            record(f"load_{card.name}_cold_ms", statistics.median(times), "ms")
    data = twelve_megapixel_jpeg()
    record("intake_12mp_jpeg_ms", median_ms(lambda: read_image(data, "12mp.jpg"), 3 if args.quick else 7), "ms")
    record("intake_12mp_jpeg_mb", len(data) / 2**20, "MB")
    record.save()


if __name__ == "__main__":
    main()
