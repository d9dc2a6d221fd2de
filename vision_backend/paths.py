"""Where things live on disk.

Two roots and nothing else: the app's own data folder (``$VISION_LAB_HOME``, default
``~/.vision_lab``) for everything the app writes, and the Keras cache (``$KERAS_HOME``,
default ``~/.keras``) where pretrained weights and data sets live under the names Keras
itself uses, so ``keras.applications`` and ``keras.datasets`` find them offline.
Both are read from the environment on every call so tests can point them elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path


def app_home() -> Path:
    """The app's data folder, created on first use."""
    home = Path(os.environ.get("VISION_LAB_HOME") or Path.home() / ".vision_lab").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def app_dir(*parts: str) -> Path:
    """A sub-folder of the app's data folder (projects, exports, feature caches...)."""
    path = app_home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def keras_home() -> Path:
    """The Keras cache root, as Keras computes it (``$KERAS_HOME`` or ``~/.keras``)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()


def keras_models_dir() -> Path:
    return keras_home() / "models"


def keras_datasets_dir() -> Path:
    return keras_home() / "datasets"
