"""The registry: every pretrained model and data set Vision Lab knows, with a card each.

A card says what a model is (task, input, preprocessing, parameters, published accuracy,
licence) and where its files come from:

* ``package`` — a PyPI package ships them (OpenCV's Haar cascades, mtcnn, dlib, ...);
* ``cache`` — files in the Keras cache under the exact names Keras uses
  (``$KERAS_HOME/models/...``, ``$KERAS_HOME/datasets/...``) or, for ONNX/TFLite models
  and our own data, under ``models/vision_lab/`` and ``datasets/vision_lab/``.

Cache files are fetched where the internet is (``fetch``, with Keras' own downloader and
the published hash) or copied from a folder where it is not (``seed``). ``status()`` tells
which are ready; ``load(name)`` builds a ready model and raises :class:`ModelMissingError`,
naming the file and the command that gets it, for one that is not.

Command line::

    python -m vision_backend.models status
    python -m vision_backend.models fetch [NAME ...]
    python -m vision_backend.models seed DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from vision_backend.paths import keras_home

KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"
FASHION_MNIST = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
SEED_HINT = "python -m vision_backend.models seed ../shared/models ../shared/data"


@dataclass(frozen=True)
class AssetFile:
    """One file (or folder tree) of a card, relative to the Keras cache root.

    ``file_hash`` is what the publisher gives: sha256 (64 hex digits) or, for Keras'
    own files, md5 (32 digits); ``keras.utils.get_file`` accepts either.
    """

    path: str
    url: str | None = None
    file_hash: str | None = None
    size: int | None = None
    is_tree: bool = False
    seed_hash: str | None = None
    """The sha256 of the copy ``seed`` accepts, where it differs from the download's bytes."""

    @property
    def local(self) -> Path:
        return keras_home() / self.path

    @property
    def name(self) -> str:
        return Path(self.path).name

    def present(self) -> bool:
        if self.is_tree:
            return self.local.is_dir() and any(self.local.iterdir())
        return self.local.is_file()


@dataclass(frozen=True)
class ModelCard:
    name: str
    title: str
    task: str
    loader: str
    """Key into ``LOADERS``: how a ready model becomes an object."""
    source: str  # "package" or "cache"
    licence: str
    input: str = ""
    preprocessing: str = ""
    params: int | None = None
    accuracy: str = ""
    latency: str = ""
    files: tuple[AssetFile, ...] = ()
    package: str | None = None
    package_files: tuple[str, ...] = ()
    """Files inside ``package`` (relative to its folder) that must exist."""
    kind: str = "model"  # or "dataset"
    seedable: bool = False
    """True where a copy is in the team's shared folder (so ``seed`` can get it offline)."""
    options: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    # -- where the files are ------------------------------------------------------------
    def package_dir(self) -> Path | None:
        spec = importlib.util.find_spec(self.package) if self.package else None
        if spec is None:
            return None
        if spec.submodule_search_locations:
            return Path(list(spec.submodule_search_locations)[0])
        return Path(spec.origin).parent if spec.origin else None

    def paths(self) -> list[Path]:
        if self.source == "package":
            folder = self.package_dir()
            return [folder / f for f in self.package_files] if folder else []
        return [f.local for f in self.files]

    def path(self, index: int = 0) -> Path:
        """The card's ``index``-th file, raising :class:`ModelMissingError` if absent."""
        self.require()
        return self.paths()[index]

    def missing(self) -> list[str]:
        """Human names of what is missing; empty when the card is ready."""
        if self.source == "package":
            folder = self.package_dir()
            if folder is None:
                return [f"the Python package '{self.package}'"]
            return [str(folder / f) for f in self.package_files if not (folder / f).exists()]
        return [str(f.local) for f in self.files if not f.present()]

    def ready(self) -> bool:
        return not self.missing()

    def how_to_get(self) -> str:
        if self.source == "package":
            return "pip install -r requirements.txt"
        if self.seedable:
            return f"{SEED_HINT}   (or where online: python -m vision_backend.models fetch {self.name})"
        if any(f.url for f in self.files):
            return f"python -m vision_backend.models fetch {self.name}   (needs the internet)"
        return "no public download; see the card"

    def status(self) -> str:
        if self.ready():
            return "ready"
        if self.source == "cache" and not self.seedable:
            return "missing — fetch where online"
        return "missing"

    def require(self) -> None:
        missing = self.missing()
        if missing:
            raise ModelMissingError(self, missing)


class ModelMissingError(FileNotFoundError):
    """A registered model or data set whose files are not on this machine."""

    def __init__(self, card: ModelCard, missing: list[str]):
        self.card = card
        self.missing_files = missing
        super().__init__(
            f"{card.title} is not on this machine: missing {', '.join(missing)}. "
            f"Get it with: {card.how_to_get()}"
        )


def _shared_file(path: str, file_hash: str, size: int, url: str | None = None) -> AssetFile:
    return AssetFile(path=path, url=url, file_hash=file_hash, size=size)


def _cascade(name: str, title: str, xml: str, note: str = "") -> ModelCard:
    return ModelCard(
        name=name, title=title, task="face detection", loader="cv2_cascade", source="package",
        package="cv2", package_files=(f"data/{xml}",), licence="Intel BSD-3 (OpenCV)",
        input="greyscale, any size; sliding 24x24 window over an image pyramid",
        preprocessing="grey + histogram equalisation",
        accuracy="Viola & Jones 2001: ~93% detection at 50 false positives on MIT+CMU",
        latency="70-110 ms on 640x480 (measured, 1.1/5/24px)", note=note,
    )


CARDS: tuple[ModelCard, ...] = (
    # ---- ImageNet classifiers and bases ---------------------------------------------------
    ModelCard(
        name="mobilenet_v2_quant_tflite", title="MobileNetV2 1.0/224 int8 (TFLite)",
        task="ImageNet classification", loader="tflite", source="cache", seedable=True,
        files=(
            _shared_file("models/vision_lab/mobilenet_v2_1.0_224_quant.tflite",
                         "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776", 3_610_798,
                         "https://github.com/google-coral/test_data/raw/master/mobilenet_v2_1.0_224_quant.tflite"),
            _shared_file("models/vision_lab/imagenet_labels.txt",
                         "b8aaeb5630c62626a7d124a05c0e14230a7ffdd2136a31d0190a4fb71c1d82f1", 21_686,
                         "https://github.com/google-coral/test_data/raw/master/imagenet_labels.txt"),
        ),
        licence="Apache-2.0 (Google)", input="224x224x3 uint8 RGB",
        preprocessing="resize to 224x224 (bilinear), no normalisation; output uint8/256, 1001 classes (0 = background)",
        params=3_538_984, accuracy="top-1 70.8% (float 71.8%), top-5 ~90% (TF-slim)", latency="~20 ms",
    ),
    ModelCard(
        name="mobilenetv2_int8_onnx", title="MobileNetV2 int8 (ONNX Model Zoo)",
        task="ImageNet classification", loader="onnxruntime", source="cache", seedable=True,
        files=(
            _shared_file("models/vision_lab/mobilenetv2-12-int8.onnx",
                         "cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f", 3_655_033,
                         "https://github.com/onnx/models/raw/main/validated/vision/classification/mobilenet/model/mobilenetv2-12-int8.onnx"),
            _shared_file("models/vision_lab/synset.txt",
                         "acf75ef0abe89694b19056e0796401068b459c457baa30335f240c7692857355", 31_675),
        ),
        licence="Apache-2.0", input="Nx3x224x224 float32",
        preprocessing="short side 256, centre crop 224, /255, ImageNet mean/std, NCHW; logits",
        params=3_504_872, accuracy="top-1 68.3%, top-5 88.4% (ONNX Model Zoo)",
    ),
    ModelCard(
        name="mobilenet_v2_notop", title="MobileNetV2 1.0/224 base, no top (Keras)",
        task="ImageNet features", loader="keras_app", source="cache", seedable=True,
        files=(AssetFile("models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
                         KERAS_APPS + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),),
        options={"app": "MobileNetV2", "include_top": False, "input_shape": (224, 224, 3)},
        licence="Apache-2.0", input="224x224x3", preprocessing="mobilenet_v2.preprocess_input: x/127.5 - 1",
        params=2_257_984, accuracy="top-1 71.3%, top-5 90.1% (Keras, with top)", latency="~45 ms (Keras, b1)",
        note="The shared copy holds Google's TF-slim ImageNet weights in Keras' h5 layout.",
    ),
    ModelCard(
        name="mobilenet_v1_025_notop", title="MobileNet v1 alpha 0.25/224 base, no top (Keras)",
        task="ImageNet features", loader="keras_app", source="cache", seedable=True,
        files=(_shared_file("models/mobilenet_2_5_224_tf_no_top.h5",
                            "dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf", 2_108_140,
                            KERAS_APPS + "mobilenet/mobilenet_2_5_224_tf_no_top.h5"),),
        options={"app": "MobileNet", "include_top": False, "alpha": 0.25, "input_shape": (224, 224, 3)},
        licence="Apache-2.0", input="224x224x3", preprocessing="mobilenet.preprocess_input: x/127.5 - 1",
        params=218_544, accuracy="top-1 41.5%, top-5 66.6% (Keras, with top)",
        note="Teachable Machine's base.",
    ),
    ModelCard(
        name="mobilenet_v2", title="MobileNetV2 1.0/224 with ImageNet top (Keras)",
        task="ImageNet classification", loader="keras_app", source="cache",
        files=(AssetFile("models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
                         KERAS_APPS + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),),
        options={"app": "MobileNetV2", "include_top": True},
        licence="Apache-2.0", input="224x224x3", preprocessing="x/127.5 - 1",
        params=3_538_984, accuracy="top-1 71.3%, top-5 90.1%", note="Keras publishes no hash for this file.",
    ),
    ModelCard(
        name="vgg16", title="VGG16 (Keras)", task="ImageNet classification", loader="keras_app", source="cache",
        files=(AssetFile("models/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                         KERAS_APPS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                         "64373286793e3c8b2b4e3219cbf3544b", 553_467_096),),
        options={"app": "VGG16", "include_top": True},
        licence="CC BY 4.0 (Oxford VGG)", input="224x224x3",
        preprocessing="caffe: RGB->BGR, minus ImageNet means", params=138_357_544,
        accuracy="top-1 71.3%, top-5 92.7% (the deck; Simonyan & Zisserman 2014: 92.7%)",
    ),
    ModelCard(
        name="resnet50", title="ResNet50 (Keras)", task="ImageNet classification", loader="keras_app", source="cache",
        files=(AssetFile("models/resnet50_weights_tf_dim_ordering_tf_kernels.h5",
                         KERAS_APPS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5",
                         "2cb95161c43110f7111970584f804107", 102_967_424),),
        options={"app": "ResNet50", "include_top": True},
        licence="MIT (Kaiming He)", input="224x224x3", preprocessing="caffe: RGB->BGR, minus ImageNet means",
        params=25_636_712, accuracy="top-1 74.9%, top-5 92.1% (Keras)",
    ),
    ModelCard(
        name="densenet121", title="DenseNet121 (Keras)", task="ImageNet classification", loader="keras_app",
        source="cache",
        files=(AssetFile("models/densenet121_weights_tf_dim_ordering_tf_kernels.h5",
                         KERAS_APPS + "densenet/densenet121_weights_tf_dim_ordering_tf_kernels.h5",
                         "9d60b8095a5708f2dcce2bca79d332c7"),),
        options={"app": "DenseNet121", "include_top": True},
        licence="BSD-3-Clause (Keras weights)", input="224x224x3", preprocessing="torch: /255, ImageNet mean/std",
        params=8_062_504, accuracy="top-1 75.0%, top-5 92.3% (Keras)",
    ),
    ModelCard(
        name="efficientnet_b0", title="EfficientNetB0 (Keras)", task="ImageNet classification", loader="keras_app",
        source="cache",
        files=(AssetFile("models/efficientnetb0.h5", "https://storage.googleapis.com/keras-applications/efficientnetb0.h5",
                         "902e53a9f72be733fc0bcb005b3ebbac"),),
        options={"app": "EfficientNetB0", "include_top": True},
        licence="Apache-2.0", input="224x224x3", preprocessing="none (rescaling is inside the model)",
        params=5_330_571, accuracy="top-1 77.1%, top-5 93.3% (Keras)",
    ),
    ModelCard(
        name="inception_v3", title="InceptionV3 (Keras)", task="ImageNet classification", loader="keras_app",
        source="cache",
        files=(AssetFile("models/inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
                         KERAS_APPS + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
                         "9a0d58056eeedaa3f26cb7ebd46da564"),),
        options={"app": "InceptionV3", "include_top": True},
        licence="Apache-2.0", input="299x299x3", preprocessing="tf: x/127.5 - 1",
        params=23_851_784, accuracy="top-1 77.9%, top-5 93.7% (Keras)",
    ),
    ModelCard(
        name="nasnet_mobile", title="NASNetMobile (Keras)", task="ImageNet classification", loader="keras_app",
        source="cache",
        files=(AssetFile("models/NASNet-mobile.h5", KERAS_APPS + "nasnet/NASNet-mobile.h5",
                         "020fb642bf7360b370c678b08e0adf61"),),
        options={"app": "NASNetMobile", "include_top": True},
        licence="Apache-2.0", input="224x224x3", preprocessing="tf: x/127.5 - 1",
        params=5_326_716, accuracy="top-1 74.4%, top-5 91.9% (Keras)",
    ),
    ModelCard(
        name="xception", title="Xception (Keras)", task="ImageNet classification", loader="keras_app",
        source="cache",
        files=(AssetFile("models/xception_weights_tf_dim_ordering_tf_kernels.h5",
                         KERAS_APPS + "xception/xception_weights_tf_dim_ordering_tf_kernels.h5",
                         "0a58e3b7378bc2990ea3b43d5981f1f6"),),
        options={"app": "Xception", "include_top": True},
        licence="MIT (Keras weights)", input="299x299x3", preprocessing="tf: x/127.5 - 1",
        params=22_910_480, accuracy="top-1 79.0%, top-5 94.5% (Keras)",
    ),
    ModelCard(
        name="imagenet_class_index", title="ImageNet class index (Keras)", task="ImageNet labels",
        loader="json", source="cache", kind="dataset", seedable=True,
        files=(_shared_file("models/imagenet_class_index.json",
                            "a1e7a966a1f601d39e4b43e119b3e7dd4a2ad3ea08cf69847cbaf021013767bc", 35_363,
                            "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"),),
        licence="ImageNet terms", note="Read by keras.applications.*.decode_predictions (md5 c2c37ea5...).",
    ),
    # ---- faces --------------------------------------------------------------------------
    _cascade("haar_frontalface_default", "Haar cascade, frontal face (default)", "haarcascade_frontalface_default.xml"),
    _cascade("haar_frontalface_alt", "Haar cascade, frontal face (alt)", "haarcascade_frontalface_alt.xml"),
    _cascade("haar_frontalface_alt2", "Haar cascade, frontal face (alt2)", "haarcascade_frontalface_alt2.xml"),
    _cascade("haar_profileface", "Haar cascade, profile face", "haarcascade_profileface.xml"),
    _cascade("haar_eye", "Haar cascade, eyes", "haarcascade_eye.xml", note="Run inside found faces."),
    ModelCard(
        name="dlib_hog", title="dlib HOG + linear SVM face detector", task="face detection", loader="dlib_hog",
        source="package", package="dlib", licence="Boost (dlib)",
        input="RGB or grey, any size; 80x80 sliding window over a pyramid",
        preprocessing="none (upsample x2 to find faces under 80 px)", accuracy="dlib: FDDB ~0.8 recall at 0 FP",
        latency="23-99 ms (astronaut, upsample 0-1)", note="Compiled into dlib; no weight file.",
    ),
    ModelCard(
        name="mtcnn", title="MTCNN (P-Net, R-Net, O-Net)", task="face detection + 5 landmarks", loader="mtcnn",
        source="package", package="mtcnn",
        package_files=("assets/weights/pnet.lz4", "assets/weights/rnet.lz4", "assets/weights/onet.lz4"),
        licence="MIT (ipazc/mtcnn)", input="RGB, any size; pyramid down to 12 px", params=495_850,
        preprocessing="(x - 127.5) / 128", accuracy="Zhang et al. 2016: FDDB 95.0% at 2,000 FP",
        latency="170-230 ms (raw, 640x480)",
    ),
    ModelCard(
        name="yunet", title="YuNet 2023mar (OpenCV Zoo)", task="face detection + 5 landmarks", loader="cv2_yunet",
        source="cache", seedable=True,
        files=(_shared_file("models/vision_lab/face_detection_yunet_2023mar.onnx",
                            "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4", 232_589,
                            "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx"),),
        licence="MIT", input="BGR uint8, any size (long side <= 640 advised)", params=75_856,
        preprocessing="none; cv2.FaceDetectorYN", accuracy="WIDER Face val AP easy 0.884 / medium 0.866 / hard 0.751",
        latency="6-14 ms",
    ),
    ModelCard(
        name="dlib_resnet_face", title="dlib ResNet face embeddings (128-d)", task="face recognition",
        loader="dlib_face_recognition", source="package", package="face_recognition_models",
        package_files=("models/dlib_face_recognition_resnet_model_v1.dat", "models/shape_predictor_5_face_landmarks.dat"),
        licence="CC0 (dlib models)", input="150x150 aligned chip (5 landmarks)",
        preprocessing="dlib.get_face_chip", params=5_585_280, accuracy="LFW 99.38% (dlib)", latency="~15 ms per face",
    ),
    ModelCard(
        name="dlib_landmarks_68", title="dlib 68-point face landmarks", task="face landmarks",
        loader="dlib_shape_predictor", source="package", package="face_recognition_models",
        package_files=("models/shape_predictor_68_face_landmarks.dat",),
        licence="iBUG 300-W: research only", input="face box + image",
    ),
    ModelCard(
        name="vggface2_resnet50", title="VGGFace2 ResNet50, no top (keras-vggface)", task="face recognition",
        loader="vggface_resnet50", source="cache",
        files=(AssetFile("models/vggface/rcmalli_vggface_tf_notop_resnet50.h5",
                         "https://github.com/rcmalli/keras-vggface/releases/download/v2.0/rcmalli_vggface_tf_notop_resnet50.h5",
                         None, 94_694_792),),
        licence="MIT code; VGGFace2 weights for research", input="224x224 face crop (MTCNN box +30%)",
        preprocessing="keras-vggface version=2: RGB->BGR minus (91.4953, 103.8827, 131.0912)",
        params=23_561_152, accuracy="VGGFace2 paper: IJB-B TAR 0.671 at FAR 1e-5 (ResNet50)",
        note="keras-vggface publishes no hash.",
    ),
    # ---- objects ------------------------------------------------------------------------
    ModelCard(
        name="nanodet_m", title="NanoDet-m 416 (COCO)", task="object detection", loader="onnxruntime",
        source="cache", seedable=True,
        files=(
            _shared_file("models/vision_lab/nanodet_m_416_coco.onnx",
                         "4b82da9944b88577175ee23a459dce2e26e6e4be573def65b1055dc2d9720186", 3_800_954,
                         "https://github.com/opencv/opencv_zoo/raw/main/models/object_detection_nanodet/object_detection_nanodet_2022nov.onnx"),
            _shared_file("models/vision_lab/coco80_labels.txt",
                         "bd17f1ee35d5f3c862a4894605855abbb9dda4b0621fdb0ac4c2c8c7bb7e730a", 621),
        ),
        licence="Apache-2.0", input="1x3x416x416 float32, letterboxed BGR", params=950_000,
        preprocessing="(BGR - [103.53,116.28,123.675]) / [57.375,57.12,58.395]", accuracy="COCO val mAP 20.6",
        latency="15-20 ms",
    ),
    ModelCard(
        name="yolov8n_seg", title="YOLOv8n-seg int8 320 (COCO) — AGPL-3.0", task="instance segmentation",
        loader="onnxruntime", source="cache", seedable=True,
        files=(
            _shared_file("models/vision_lab/yolov8n-seg_int8_320_coco.onnx",
                         "a892891617cbadd34d860f66a866393a8d4c487c49f1474e9b6d9e578332e56a", 3_711_949),
            _shared_file("models/vision_lab/coco80_labels.txt",
                         "bd17f1ee35d5f3c862a4894605855abbb9dda4b0621fdb0ac4c2c8c7bb7e730a", 621),
        ),
        licence="AGPL-3.0 (Ultralytics weights)", input="1x3x320x320 float32, letterboxed RGB/255 (pad 114)",
        params=3_400_000, preprocessing="letterbox 114, RGB/255, NCHW",
        accuracy="COCO val box mAP 36.7 / mask 30.5 at 640 (Ultralytics; lower at 320 int8)", latency="~80 ms",
        note="AGPL-3.0: an explicit choice, never the default.",
    ),
    ModelCard(
        name="mask_rcnn", title="Mask R-CNN R50-FPN (ONNX Model Zoo)", task="instance segmentation",
        loader="onnxruntime", source="cache",
        files=(AssetFile("models/vision_lab/MaskRCNN-12.onnx",
                         "https://github.com/onnx/models/raw/main/validated/vision/object_detection_segmentation/mask-rcnn/model/MaskRCNN-12.onnx",
                         "5bf940c124d9117f6fae350c4e0d46df180cbb01981832b35fdbed148078b946", 177_970_010),),
        licence="MIT", input="3xHxW float32 BGR, shorter side 800, padded to x32",
        preprocessing="BGR minus [102.9801, 115.9465, 122.7717]", params=44_400_000,
        accuracy="COCO val2017 box AP 36.1 / mask AP 32.7 (the deck's model)",
        note="Opset-12 file of the same model as MaskRCNN-10.onnx; hash from the Zoo's LFS pointer.",
    ),
    # ---- data sets ----------------------------------------------------------------------
    ModelCard(
        name="fashion_mnist", title="Fashion-MNIST (60,000 + 10,000)", task="28x28 classification data",
        loader="none", source="cache", kind="dataset", seedable=True,
        files=tuple(
            AssetFile(f"datasets/fashion-mnist/{f}", FASHION_MNIST + "fashion-mnist/" + f, seed_hash=debian_sha256)
            for f, debian_sha256 in (
                ("train-labels-idx1-ubyte.gz", "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"),
                ("train-images-idx3-ubyte.gz", "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"),
                ("t10k-labels-idx1-ubyte.gz", "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"),
                ("t10k-images-idx3-ubyte.gz", "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"),
            )
        ),
        licence="MIT (Zalando)",
        note="Seeded from Debian's dataset-fashion-mnist (same images, recompressed: its own hashes).",
    ),
    ModelCard(
        name="mnist", title="MNIST (60,000 + 10,000)", task="28x28 classification data", loader="none",
        source="cache", kind="dataset",
        files=(AssetFile("datasets/mnist.npz", FASHION_MNIST + "mnist.npz",
                         "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1", 11_490_434),),
        licence="CC BY-SA 3.0",
    ),
    ModelCard(
        name="mnist_t10k", title="MNIST test set (10,000 real digits)", task="28x28 classification data",
        loader="none", source="cache", kind="dataset", seedable=True,
        files=(
            _shared_file("datasets/mnist-t10k/t10k-images-idx3-ubyte.gz",
                         "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1_648_877),
            _shared_file("datasets/mnist-t10k/t10k-labels-idx1-ubyte.gz",
                         "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4_542),
        ),
        licence="CC BY-SA 3.0",
    ),
    ModelCard(
        name="photos", title="Demo photos (faces, groups, objects)", task="photos", loader="none",
        source="cache", kind="dataset", seedable=True,
        files=(AssetFile("datasets/vision_lab/photos", is_tree=True),),
        licence="see ../shared/MANIFEST.md (press photos: testing only)",
    ),
    ModelCard(
        name="lfw", title="LFW: five people + fold-1 pairs", task="face recognition data", loader="none",
        source="cache", kind="dataset", seedable=True,
        files=(AssetFile("datasets/vision_lab/lfw", is_tree=True),), licence="research use",
    ),
    ModelCard(
        name="demo_classes", title="Flowers demo project (5 classes x 50)", task="transfer-learning data",
        loader="none", source="cache", kind="dataset", seedable=True,
        files=(AssetFile("datasets/vision_lab/demo-classes", is_tree=True),), licence="CC BY 2.0 (Flickr)",
    ),
)

REGISTRY: dict[str, ModelCard] = {card.name: card for card in CARDS}


def card(name: str) -> ModelCard:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no model called {name!r}; known: {', '.join(REGISTRY)}") from None


def status() -> list[dict[str, Any]]:
    """One row per card: what it is and whether it is ready, with the command to fix it."""
    rows = []
    for c in CARDS:
        ready = c.ready()
        rows.append({
            "name": c.name, "title": c.title, "kind": c.kind, "task": c.task,
            "status": c.status(), "ready": ready, "licence": c.licence,
            "params": c.params, "accuracy": c.accuracy,
            "get it with": "" if ready else c.how_to_get(),
        })
    return rows


# ---- loading ----------------------------------------------------------------------------
def _load_keras_app(c: ModelCard) -> Any:
    import keras

    options = dict(c.options)
    constructor = getattr(keras.applications, options.pop("app"))
    return constructor(weights=str(c.path()), **options)


def _load_tflite(c: ModelCard) -> Any:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(c.path()), num_threads=os.cpu_count() or 2)
    interpreter.allocate_tensors()
    return interpreter


def onnx_session(path: str | Path) -> Any:
    """An onnxruntime session tuned for this 2-core CPU (used for registered and converted models)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 2
    options.inter_op_num_threads = 1
    # no busy-waiting between runs: spinning workers steal the 2 cores from the decoding and
    # drawing that follow each run (measured: YOLOv8n-seg's adapter 140 -> ~95 ms)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # some exported graphs list initialisers as inputs; harmless
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _load_onnx(c: ModelCard) -> Any:
    return onnx_session(c.path())


def _load_cascade(c: ModelCard) -> Any:
    import cv2

    cascade = cv2.CascadeClassifier(str(c.path()))
    if cascade.empty():
        raise RuntimeError(f"OpenCV could not read {c.path()}")
    return cascade


def _load_yunet(c: ModelCard) -> Any:
    import cv2

    return cv2.FaceDetectorYN.create(str(c.path()), "", (320, 320), 0.9, 0.3, 5000)


def _load_dlib_hog(c: ModelCard) -> Any:
    c.require()
    import dlib

    return dlib.get_frontal_face_detector()


def _load_dlib_recognition(c: ModelCard) -> Any:
    import dlib

    return dlib.face_recognition_model_v1(str(c.path(0))), dlib.shape_predictor(str(c.path(1)))


def _load_shape_predictor(c: ModelCard) -> Any:
    import dlib

    return dlib.shape_predictor(str(c.path()))


def _load_json(c: ModelCard) -> Any:
    import json

    return json.loads(c.path().read_text())


def _load_by_module(c: ModelCard) -> Any:
    module_name, _, function = LATER_LOADERS[c.loader].partition(":")
    c.require()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise NotImplementedError(f"{c.title}: its loader ({module_name}) is not built yet") from error
    return getattr(module, function)(c)


LATER_LOADERS = {
    "vggface_resnet50": "vision_backend.vggface:load_vggface_resnet50",
    "mtcnn": "vision_backend.face_detection:load_mtcnn",  # with its pyramid fix
}
"""Loaders that live beside their topic (they build an architecture of their own)."""

LOADERS: dict[str, Callable[[ModelCard], Any]] = {
    "keras_app": _load_keras_app,
    "tflite": _load_tflite,
    "onnxruntime": _load_onnx,
    "cv2_cascade": _load_cascade,
    "cv2_yunet": _load_yunet,
    "dlib_hog": _load_dlib_hog,
    "dlib_face_recognition": _load_dlib_recognition,
    "dlib_shape_predictor": _load_shape_predictor,
    "json": _load_json,
    **{key: _load_by_module for key in LATER_LOADERS},
}


def load(name: str) -> Any:
    """Build the model ``name`` from its files. Not cached: pages cache it per process."""
    c = card(name)
    c.require()
    if c.loader not in LOADERS:
        raise ValueError(f"{c.title} is a data set, not a loadable model")
    return LOADERS[c.loader](c)


# ---- getting files: fetch (online) and seed (offline) ------------------------------------
def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_matches(path: Path, expected: str | None) -> bool:
    if not expected:
        return True
    algorithm = "sha256" if len(expected) == 64 else "md5"
    return file_digest(path, algorithm) == expected.lower()


def fetch(names: Iterable[str] = (), log: Callable[[str], None] = print) -> list[str]:
    """Download missing cache files with Keras' downloader, checking the published hash."""
    from keras.utils import get_file

    done = []
    for c in [card(n) for n in names] or [c for c in CARDS if c.source == "cache"]:
        for f in c.files:
            if f.present() or not f.url or f.is_tree:
                continue
            log(f"fetching {c.name}: {f.url}")
            get_file(
                fname=f.name, origin=f.url, file_hash=f.file_hash,
                cache_subdir=str(Path(f.path).parent), cache_dir=str(keras_home()),
            )
            done.append(f.path)
    return done


DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def seed(directories: Iterable[str | Path], log: Callable[[str], None] = print) -> list[str]:
    """Copy files found under ``directories`` into the cache under their registered names.

    A file is matched by its base name (a folder tree by its folder name) and copied only
    if its hash matches the card, so a same-named file of other bytes is refused, not used.
    Files already in place are left alone. Returns the cache paths written.
    """
    by_name: dict[str, list[Path]] = {}
    for directory in map(Path, directories):
        if not directory.exists():
            log(f"skip {directory}: no such folder")
            continue
        for path in [directory, *directory.rglob("*")]:
            by_name.setdefault(path.name, []).append(path)
    written = []
    for c in CARDS:
        if c.source != "cache":
            continue
        for f in c.files:
            if f.present():
                continue
            candidates = [p for p in by_name.get(f.name, []) if p.is_dir() == f.is_tree]
            good = [p for p in candidates if f.is_tree or hash_matches(p, f.seed_hash or f.file_hash)]
            if candidates and not good:
                log(f"refused {candidates[0]}: its hash is not the one registered for {c.name}")
                continue
            if not good:
                continue
            target = f.local
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            if f.is_tree:
                shutil.rmtree(partial, ignore_errors=True)
                shutil.copytree(good[0], partial)
            else:
                shutil.copyfile(good[0], partial)
            os.replace(partial, target)
            written.append(f.path)
            log(f"seeded {c.name}: {good[0]} -> {target}")
    return written


def _print_status() -> None:
    rows = status()
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        line = f"{r['name']:<{width}}  {r['kind']:<7}  {r['status']:<28}  {r['title']}"
        print(line)
        if not r["ready"]:
            print(f"{'':<{width}}  -> {r['get it with']}")
    ready = sum(r["ready"] for r in rows)
    print(f"{ready} of {len(rows)} ready; cache: {keras_home()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vision_backend.models", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="list every registered model and whether it is ready")
    fetch_parser = sub.add_parser("fetch", help="download missing files (needs the internet)")
    fetch_parser.add_argument("names", nargs="*")
    seed_parser = sub.add_parser("seed", help="copy files found under DIR into the cache")
    seed_parser.add_argument("dirs", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "status":
        _print_status()
    elif args.command == "fetch":
        fetch(args.names)
    else:
        dirs = list(args.dirs)
        if DEBIAN_FASHION_MNIST.is_dir():
            dirs.append(str(DEBIAN_FASHION_MNIST))
        seed(dirs)
        _print_status()
    return 0


if __name__ == "__main__":
    sys.exit(main())
