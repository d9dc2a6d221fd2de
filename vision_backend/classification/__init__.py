"""ImageNet classification with pretrained CNNs on Keras, ONNX Runtime and LiteRT.

``classifiers`` holds the models and their engines (inference); ``imagenet`` the labels and the
deck's ILSVRC table; ``convert`` the conversions between engines; ``gradcam`` Grad-CAM on Keras models;
``saliency`` maps without gradients (occlusion, RISE) for every classifier on every engine, and their
deletion / insertion scores. Neither explanation module is imported here: each loads its side (Keras, the
transfer package) only when a page or a bench asks for it.
"""

from vision_backend.classification.classifiers import (CLASSIFIERS, ENGINE_NAMES, ImageNetClassifier,
                                                       KerasApplication, Prediction, engine_agreement, engine_title)

__all__ = ["CLASSIFIERS", "ENGINE_NAMES", "ImageNetClassifier", "KerasApplication", "Prediction", "engine_agreement",
           "engine_title"]
