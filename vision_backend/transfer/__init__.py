"""Transfer learning: a network trained on ImageNet describes your photos; a small head learns your classes.

``bases`` holds the frozen networks; ``features`` pools and caches what they see; ``head`` trains
fast mode's head; ``full`` trains on augmented photos with optional fine-tuning; ``evaluate`` says
what a trained model is worth; ``export`` makes one whole model of it; ``projects`` stores labelled
photos; ``demo`` is the flowers demo.
"""

from vision_backend.transfer.bases import BASES, FeatureBase

__all__ = ["BASES", "FeatureBase"]
