"""A call's photos and settings, read the one way: multipart or base64 JSON in, intake's decoding, checked names.

Photos come as files of a ``multipart/form-data`` body (``curl -F photo=@cat.jpg``) or as base64 strings in a
JSON object (``{"photo": "<base64>", "photo_name": "cat.jpg"}``; a ``data:`` URL works too); either way they
are decoded by :mod:`vision_backend.intake`, the uploaders' own path, with its byte and pixel caps and its
messages. Settings and the model are query parameters in both (``?model=mtcnn&min_face_size=40``): strings, as
the command line's ``--set NAME=VALUE``, checked by the model's own :class:`~vision_backend.model.Param` list.
A multipart body is parsed in memory (nothing is written to disk) with caps on its parts and headers.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import PurePosixPath
from typing import Any, Mapping

import numpy as np
from python_multipart.multipart import MultipartParser, parse_options_header

from vision_backend.api.answers import UnsupportedType
from vision_backend.errors import BadInput, ImageIntakeError
from vision_backend.intake import read_photo

MAX_PARTS = 8
DATA_URL = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)


def photo_name(raw: str | None, field: str) -> str:
    """A sender's file name as messages and rows show it: its last part, printable, at most 100 characters."""
    name = PurePosixPath(str(raw or "").replace("\\", "/")).name
    name = "".join(c for c in name if c.isprintable())[:100].strip()
    return name or field


def _disposition(headers: dict[bytes, bytes]) -> tuple[str, str | None]:
    _, options = parse_options_header(headers.get(b"content-disposition", b""))
    name = options.get(b"name", b"").decode("utf-8", "replace")
    filename = options.get(b"filename")
    return name, None if filename is None else filename.decode("utf-8", "replace")


class _Parts:
    """python-multipart's callbacks, collecting each part's headers and bytes in memory."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, str | None, bytes]] = []
        self.headers: dict[bytes, bytes] = {}
        self.field, self.value, self.data, self.ended = b"", b"", [], False

    def callbacks(self) -> dict[str, Any]:
        return {"on_header_field": self.header_field, "on_header_value": self.header_value,
                "on_header_end": self.header_end, "on_part_data": self.part_data, "on_part_end": self.part_end,
                "on_end": self.end}

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.field.lower()] = self.value
        self.field = self.value = b""

    def part_data(self, data: bytes, start: int, end: int) -> None:
        self.data.append(data[start:end])

    def part_end(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise BadInput(f"The multipart body has more than {MAX_PARTS} parts.")
        self.parts.append((*_disposition(self.headers), b"".join(self.data)))
        self.headers, self.data = {}, []

    def end(self) -> None:
        self.ended = True


def multipart_parts(body: bytes, content_type: str) -> list[tuple[str, str | None, bytes]]:
    """(field, file name or None, bytes) of every part of a ``multipart/form-data`` body."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadInput("The multipart body has no boundary in its Content-Type.")
    collected = _Parts()
    try:
        parser = MultipartParser(boundary, collected.callbacks())
        parser.write(body)
        parser.finalize()
    except BadInput:
        raise
    except Exception:  # noqa: BLE001 - whatever the parser disliked, one message
        raise BadInput("The multipart body could not be read: it is malformed or cut short.") from None
    if not collected.ended:
        raise BadInput("The multipart body ended before its closing boundary.")
    return collected.parts


def _from_multipart(body: bytes, content_type: str, fields: tuple[str, ...]) -> dict[str, tuple[str, bytes]]:
    photos: dict[str, tuple[str, bytes]] = {}
    for field, filename, data in multipart_parts(body, content_type):
        if field not in fields:
            raise BadInput(f"Unexpected form field “{photo_name(field, '?')}”: send {_named(fields)}; the model and "
                           "its settings go in the query string (?model=…&score_threshold=…).")
        if field in photos:
            raise BadInput(f"The form field “{field}” came twice; send one photo in it.")
        photos[field] = (photo_name(filename, field), data)
    return photos


def _base64(text: Any, field: str) -> bytes:
    if not isinstance(text, str):
        raise BadInput(f"“{field}” must be a photo as a base64 string.")
    try:
        return base64.b64decode(DATA_URL.sub("", text.strip(), count=1), validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"“{field}” is not valid base64.") from None


def _from_json(body: bytes, fields: tuple[str, ...]) -> dict[str, tuple[str, bytes]]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadInput("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadInput(f"The JSON body must be an object with {_named(fields)}.")
    allowed = {*fields, *(f"{f}_name" for f in fields)}
    unexpected = [k for k in data if k not in allowed]
    if unexpected:
        raise BadInput(f"Unexpected JSON field “{photo_name(unexpected[0], '?')}”: send {_named(fields)} (and "
                       "optionally a file name in “<field>_name”); the model and its settings go in the query string.")
    names = {f: data.get(f"{f}_name") for f in fields}
    if any(n is not None and not isinstance(n, str) for n in names.values()):
        raise BadInput("A file name (“<field>_name”) must be a string.")
    return {f: (photo_name(names[f], f), _base64(data[f], f)) for f in fields if f in data}


def _named(fields: tuple[str, ...]) -> str:
    return " and ".join(f"“{f}”" for f in fields)


def photo_bytes(body: bytes, content_type: str, fields: tuple[str, ...]) -> dict[str, tuple[str, bytes]]:
    """Each of ``fields``' (file name, bytes) from a multipart or JSON body; every field is required."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        photos = _from_multipart(body, content_type, fields)
    elif kind == "application/json" or kind.endswith("+json"):
        photos = _from_json(body, fields)
    else:
        raise UnsupportedType(f"Send photos as multipart/form-data (curl -F {fields[0]}=@photo.jpg) or as base64 "
                              f"in a JSON object, not {kind or 'a body without a Content-Type'}.")
    missing = [f for f in fields if f not in photos]
    if missing:
        raise BadInput(f"No photo in “{missing[0]}”: send it as a form file (curl -F {missing[0]}=@photo.jpg) or as "
                       "base64 in a JSON field of that name.")
    return photos


def read_photos(body: bytes, content_type: str, fields: tuple[str, ...]) -> dict[str, tuple[str, np.ndarray]]:
    """Each field's (file name, RGB array), decoded as every uploader decodes (caps and messages included); a
    photo that cannot be used raises intake's error, with its name as the answer's ``path``."""
    decoded = {}
    for field, (name, data) in photo_bytes(body, content_type, fields).items():
        try:
            decoded[field] = (name, read_photo(data, name).image)
        except ImageIntakeError as error:
            error.fields = {"path": name}  # type: ignore[attr-defined]
            raise
    return decoded


def settings_in(query: Mapping[str, str], reserved: tuple[str, ...]) -> dict[str, str]:
    """The query parameters that are model settings (all but the call's own, ``model``, ``top``...)."""
    return {k: v for k, v in query.items() if k not in reserved}
