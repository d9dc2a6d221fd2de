"""How the API answers: always JSON, a failure as ``{"error": message}`` with the error's own HTTP status.

A :class:`~vision_backend.errors.UserError` says itself (the pages' and the command line's message) with its
``status``; :class:`~vision_backend.errors.Busy` adds ``Retry-After``; anything else is a bug, logged and
answered with one plain line, never a traceback. The few failures only HTTP has (no key, a read-only key, a
body too large, a body of the wrong type) are subclasses here, each with its status.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import numpy as np
from starlette.responses import Response

from vision_backend.errors import BadInput, Busy, UserError, message

log = logging.getLogger("vision_lab.api")


class Unauthorized(UserError):
    """No key, a wrong key or a revoked one: the same answer for each, so a caller learns nothing."""

    status = 401

    def __init__(self) -> None:
        super().__init__("An API key is needed: send it as the header “Authorization: Bearer YOUR_KEY”.")


class Forbidden(UserError):
    status = 403


class TooLarge(BadInput):
    status = 413


class UnsupportedType(BadInput):
    status = 415


class TooSlow(BadInput):
    status = 408


def _plain(value: Any) -> Any:
    """numpy numbers and arrays as JSON's own (rows hold what the models gave)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _finite(value: Any) -> Any:
    """NaN and infinities (no JSON number) as null, all the way down."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_bytes(data: Any) -> bytes:
    """``data`` as strict JSON: a number that is not finite becomes null rather than invalid JSON."""
    try:
        return json.dumps(data, default=_plain, allow_nan=False, ensure_ascii=False).encode()
    except ValueError:
        return json.dumps(_finite(json.loads(json.dumps(data, default=_plain))), ensure_ascii=False).encode()


def answer(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json_bytes(data), status, headers, media_type="application/json")


def failure(error: BaseException) -> Response:
    """The answer for ``error``: its own status and message for a person's error, 500 and one line for a bug."""
    if not isinstance(error, UserError):
        log.error("API call failed", exc_info=error)
        return answer({"error": message(error)}, 500)
    headers = {}
    if isinstance(error, Busy):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="Vision Lab"'
    body = {"error": str(error), **getattr(error, "fields", {})}
    return answer(body, error.status, headers)
