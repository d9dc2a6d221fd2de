"""Face recognition with embeddings: a face becomes a vector; the same person's faces lie close together.

``embedders`` holds the networks (dlib's ResNet, VGGFace2's ResNet50 built in ``vggface``);
``recognise`` finds, embeds, names and verifies faces; ``gallery`` stores enrolled people;
``lfw`` measures verification on LFW; ``scratch`` is the deck's from-scratch-versus-transfer experiment.
"""

from vision_backend.face_recognition.embedders import EMBEDDERS, DlibResNet, FaceEmbedder, VGGFace2

__all__ = ["EMBEDDERS", "DlibResNet", "FaceEmbedder", "VGGFace2"]
