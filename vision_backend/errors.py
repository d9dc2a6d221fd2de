"""Every error meant for a person, in one module: one base, :class:`UserError`, and a subclass where a caller
needs to tell them apart.

``str(error)`` of a :class:`UserError` is written for the person who caused it (what was wrong, what to do),
so every page shows it the same way (``pages/_shared.friendly_errors``), the command line prints it as one
line and the HTTP API answers it as a 4xx. Anything else that escapes is a bug: logged, never shown.
Each subclass also derives from the built-in error it used to be (``ValueError``, ``FileNotFoundError``...)
so code that caught those still does.
"""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """A failure a person can act on; ``str(error)`` is the message, shown as it is."""

    status = 400
    """The HTTP status an API answers it with."""


class BadInput(UserError, ValueError):
    """Input that cannot be used (a file, a setting, a value); says what was wrong with it."""


class ImageIntakeError(BadInput):
    """An upload that is not a usable photo."""


class VideoIntakeError(BadInput):
    """A video that cannot be read (or not all of it); says how much was read."""


class ArchiveError(BadInput):
    """An upload that is not a ZIP we can read at all."""


class AnnotationError(BadInput):
    """A box annotation file (Pascal VOC, COCO, YOLO) that cannot be read."""


class SettingError(BadInput, KeyError):
    """A model setting that does not exist or is out of range (``--set``, an API field, a preset)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidName(BadInput):
    """A name that breaks the naming rule."""


class NameTaken(UserError, ValueError):
    """A rename or create onto a name that is already used."""

    status = 409


class NotFound(UserError, KeyError):
    """No such project, person, model or saved file in this workspace."""

    status = 404

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelMissingError(UserError, FileNotFoundError):
    """A registered model or data set whose files are not on this machine; says how to get them."""

    status = 503

    def __init__(self, card: Any, missing: list[str]):
        self.card = card
        self.missing_files = missing
        super().__init__(f"{card.title} is not on this machine: missing {', '.join(missing)}. "
                         f"Get it with: {card.how_to_get()} (without the internet: {card.offline_hint()})")


class FetchError(UserError, RuntimeError):
    """A file that could not be fetched; one line a person can act on."""

    status = 502


class HashMismatch(FetchError):
    """A download whose bytes are not the published ones (refused; nothing is kept)."""


class StorageUnavailable(UserError, ConnectionError):
    """The workspace's database or object store cannot be reached right now; nothing was changed."""

    status = 503


class Busy(UserError):
    """The server is at its limit for this kind of work; try again in a moment."""

    status = 429

    def __init__(self, message: str, retry_after_s: float = 1.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def message(error: BaseException) -> str:
    """What to show a person for ``error``: a :class:`UserError`'s own text, else a plain line."""
    if isinstance(error, UserError):
        return str(error)
    return "Something went wrong on the server; the rest still works. The server's log has the details."


__all__ = ["AnnotationError", "ArchiveError", "BadInput", "Busy", "FetchError", "HashMismatch", "ImageIntakeError",
           "InvalidName", "ModelMissingError", "NameTaken", "NotFound", "SettingError", "StorageUnavailable",
           "UserError", "VideoIntakeError", "message"]
