"""Shared test set-up: a private app folder per test session, and the real-weights rule.

``VISION_REQUIRE_WEIGHTS=1`` (set by CI) turns "the real file is not here" from a skip
into a failure, so CI proves every feature on real weights.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(autouse=True, scope="session")
def _app_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Everything the app writes during tests goes to a temporary folder.

    Keras is imported here, before any test points ``KERAS_HOME`` elsewhere: Keras reads
    that variable once, at import, and its own loaders must see the real cache.
    """
    import keras  # noqa: F401

    home = tmp_path_factory.mktemp("vision_lab_home")
    os.environ["VISION_LAB_HOME"] = str(home)
    return home


def _missing(message: str) -> None:
    if os.environ.get("VISION_REQUIRE_WEIGHTS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def require_shared() -> Path:
    """The team's shared folder of real files (beside the checkout), or skip/fail."""
    if not (SHARED / "MANIFEST.md").is_file():
        _missing(f"{SHARED} is not here")
    return SHARED


def require_real(name: str) -> None:
    """Skip (or, under VISION_REQUIRE_WEIGHTS=1, fail) unless the real model/data ``name`` is ready."""
    from vision_backend import models

    card = models.card(name)
    if card.ready():
        return
    _missing(f"real {card.title} missing: {', '.join(card.missing())}; {card.how_to_get()}")


@pytest.fixture(scope="session")
def real_model():
    """The registered model ``name`` (its one shared instance, as the pages use it), once its real
    files are here; its engine loads on first use and stays loaded for the test session."""
    from vision_backend import models

    def get(name: str):
        require_real(name)
        return models.get(name)

    return get


@pytest.fixture
def photo():
    """A real demo photo from the seeded cache, as an RGB array."""
    from vision_backend import samples

    def get(name: str):
        require_real("photos")
        return samples.load_sample(name)

    return get


@pytest.fixture(autouse=True, scope="session")
def _navigation_mode() -> None:
    """AppTest runs app.py's navigation on every run, as ``streamlit run`` does (pages/_shared.py says why)."""
    from pages._shared import navigation_mode_in_apptest

    navigation_mode_in_apptest()


sys.path.insert(0, str(ROOT))
