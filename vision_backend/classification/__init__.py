"""ImageNet classification with pretrained CNNs on Keras, ONNX Runtime and LiteRT.

``classifiers`` holds the models and their engines (inference); ``imagenet`` the labels and the
deck's ILSVRC table; ``convert`` the conversions between engines; ``gradcam`` the explanation.
"""

from vision_backend.classification.classifiers import (CLASSIFIERS, ENGINE_NAMES, ImageNetClassifier,
                                                       KerasApplication, Prediction, engine_agreement, engine_title)

__all__ = ["CLASSIFIERS", "ENGINE_NAMES", "ImageNetClassifier", "KerasApplication", "Prediction", "engine_agreement",
           "engine_title"]
