"""Face embedders: a face becomes a unit vector, and the same person's faces lie close together.

One interface for every embedder: a photo and its face boxes in, aligned crops and L2-normalised
embeddings out, so *distance* (Euclidean between unit vectors, 0..2) means the same thing for all
of them. dlib's ResNet aligns each face on 5 landmarks into a 150x150 chip and gives 128 numbers;
VGGFace2's ResNet50 crops the detector's box grown by 30% and gives 2048.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vision_backend import engines
from vision_backend.cards import AssetFile, ModelCard
from vision_backend.detections import Detections
from vision_backend.face_recognition import vggface
from vision_backend.imageops import l2_normalise
from vision_backend.model import Model, Param


def _threshold(default: float, margin: float) -> tuple[Param, ...]:
    """The same-person threshold, the uncertain band around it and the smallest face worth naming."""
    return (Param("threshold", "Same-person distance threshold", default, 0.1, 1.4, 0.01,
                  help="Embeddings are unit vectors: distance 0 = identical, about 1.4 = unrelated. "
                       "The default is the best threshold measured on LFW."),
            Param("margin", "Uncertain within ± of the threshold", margin, 0.0, 0.3, 0.01,
                  help="Near the threshold true matches and strangers overlap (on LFW: matches 0.26-0.40, strangers "
                       "0.44-0.55 with dlib): a face this close to the line is shown as uncertain, not named."),
            Param("min_named_face", "Smallest face to name (px)", 48, 0, 200, 4, in_photo_pixels=True,
                  help="A smaller face is blown up to the network's input and its embedding is unreliable: it is "
                       "shown as too small to tell, never named."))


class FaceEmbedder(Model):
    """A face recogniser's network: ``embed(image, faces)`` -> (N, d) unit vectors and the N crops it saw."""

    dimensions: int = 0
    group = "embedder"

    def embed(self, image: np.ndarray, faces: Detections, engine: Any = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """Unit vectors and crops of ``faces`` (on a worker's own ``engine`` where it gives one)."""
        if not len(faces):
            return np.zeros((0, self.dimensions), np.float32), []
        with self.engine_for(engine) as network:
            vectors, crops = self.infer(network, image, faces)
        return l2_normalise(vectors), crops

    def infer(self, network: Any, image: np.ndarray, faces: Detections) -> tuple[np.ndarray, list[np.ndarray]]:
        raise NotImplementedError

    @property
    def threshold(self) -> float:
        return float(self.param("threshold").default)

    @property
    def margin(self) -> float:
        return float(self.param("margin").default)


class DlibResNet(FaceEmbedder):
    """dlib's ResNet-29: faces aligned on 5 landmarks into 150x150 chips, 128 numbers each."""

    short_title = "dlib ResNet (128-d)"
    roles = ("embed",)
    warm = True

    card = ModelCard(
        name="dlib_resnet_face", title="dlib ResNet face embeddings (128-d)", task="face recognition",
        source="package", package="face_recognition_models",
        package_files=("models/dlib_face_recognition_resnet_model_v1.dat", "models/shape_predictor_5_face_landmarks.dat"),
        licence="CC0 (dlib models)", input="150x150 aligned chip (5 landmarks)", preprocessing="dlib.get_face_chip",
        params=5_585_280, accuracy="LFW 99.38% (dlib)",
    )
    params = _threshold(0.42, 0.03)
    dimensions = 128

    def load(self) -> Any:
        dlib = engines.dlib()
        return dlib.face_recognition_model_v1(str(self.card.path(0))), dlib.shape_predictor(str(self.card.path(1)))

    def infer(self, loaded: Any, image: np.ndarray, faces: Detections) -> tuple[np.ndarray, list[np.ndarray]]:
        dlib = engines.dlib()
        network, landmarks = loaded
        image = np.ascontiguousarray(image)
        chips = []
        for x1, y1, x2, y2 in faces.boxes.round().astype(int):
            shape = landmarks(image, dlib.rectangle(int(x1), int(y1), int(x2), int(y2)))
            chips.append(np.asarray(dlib.get_face_chip(image, shape, size=150, padding=0.25)))
        return np.asarray(network.compute_face_descriptor(chips), np.float32), chips


class VGGFace2(FaceEmbedder):
    """VGGFace2's ResNet50 (keras-vggface, rebuilt for Keras 3): the box grown by 30%, 224x224, 2048 numbers."""

    short_title = "VGGFace2 ResNet50 (2048-d)"
    per_worker = False  # a Keras model: one per process

    card = ModelCard(
        name="vggface2_resnet50", title="VGGFace2 ResNet50, no top (keras-vggface)", task="face recognition",
        files=(AssetFile("models/vggface/rcmalli_vggface_tf_notop_resnet50.h5",
                         "https://github.com/rcmalli/keras-vggface/releases/download/v2.0/"
                         "rcmalli_vggface_tf_notop_resnet50.h5", None, 94_694_792),),
        licence="MIT code; VGGFace2 weights for research", input="224x224 face crop (MTCNN box +30%)",
        preprocessing="keras-vggface version=2: RGB->BGR minus (91.4953, 103.8827, 131.0912)",
        params=23_561_152, accuracy="VGGFace2 paper: IJB-B TAR 0.671 at FAR 1e-5 (ResNet50)",
        note="keras-vggface publishes no hash.",
    )
    params = _threshold(0.9, 0.05)
    dimensions = 2048

    def load(self) -> Any:
        model = vggface.resnet50()
        vggface.load_weights(model, self.card.path())
        return model

    def infer(self, model: Any, image: np.ndarray, faces: Detections) -> tuple[np.ndarray, list[np.ndarray]]:
        crops = [vggface.crop(image, box) for box in faces.boxes]
        return np.asarray(model.predict_on_batch(vggface.preprocess(np.stack(crops)))), crops


EMBEDDERS: dict[str, FaceEmbedder] = {e.name: e for e in (DlibResNet(), VGGFace2())}
"""Every face embedder by card name; dlib's runs here, VGGFace2's once its weights are fetched."""
