"""The API's calls as data (:data:`OPERATIONS`) and the one handler every call goes through.

Each call: its key checked (401, nothing else said, for no key, a wrong one or a revoked one), a read-only key
kept to reading (403), the key's rate (429), a slot in the worker pool (429 at once when the queue is full,
never a hang), the body read within its cap (413) and time (408), then the work in a worker thread, answered
as JSON. The OpenAPI document (:mod:`vision_backend.api.schema`) is made from the same table, so a call and
its documentation cannot drift apart.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from vision_backend.api import listing, work
from vision_backend.api.answers import Forbidden, TooLarge, TooSlow, answer, failure
from vision_backend.api.keys import authenticate, remembered
from vision_backend.api.limits import body_cap, limiter, pool
from vision_backend.errors import NotFound

MOUNT, VERSION = "/api", "/v1"
PREFIX = MOUNT + VERSION
"""Where the calls are: the API is mounted at ``/api``, its routes are ``/v1/...`` within it."""
BODY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Operation:
    """One call: method and path (under :data:`PREFIX`), the work, and what its documentation says."""

    method: str
    path: str
    work: Callable[[work.Call], dict[str, Any]]
    summary: str
    answer: str
    photos: tuple[str, ...] = ()
    writes: bool = False
    group: str = ""
    """The registry group whose models ``?model=`` names (their settings are query parameters too)."""
    detector: bool = False
    """True when ``?detector=`` picks the face finder (whose settings are query parameters too)."""
    tag: str = "photos"


OPERATIONS = (
    Operation("POST", "/classify", work.classify, "ImageNet labels for a photo", "Classified", ("photo",),
              group="classifier"),
    Operation("POST", "/faces", work.faces, "Faces in a photo", "Faces", ("photo",), group="face detector"),
    Operation("POST", "/objects", work.objects, "COCO objects in a photo", "Objects", ("photo",),
              group="object detector"),
    Operation("POST", "/embed", work.embed, "Every face in a photo and its embedding", "Embedded", ("photo",),
              group="embedder", detector=True),
    Operation("POST", "/recognize", work.recognize, "Every face in a photo named from your gallery", "Recognized",
              ("photo",), group="embedder", detector=True),
    Operation("POST", "/verify", work.verify, "Whether two photos show the same person", "Verified",
              ("photo_a", "photo_b"), group="embedder", detector=True),
    Operation("POST", "/projects/{name}/predict", work.predict, "Your own classes for a photo (a project's newest "
              "trained model)", "Predicted", ("photo",), tag="your workspace"),
    Operation("POST", "/detectors/{name}/detect", work.own_detector, "Your own objects in a photo (the newest "
              "detector trained on your detection project)", "Objects", ("photo",), tag="your workspace"),
    Operation("GET", "/projects", listing.projects, "Your projects and their trained models", "Projects",
              tag="your workspace"),
    Operation("GET", "/gallery", listing.gallery, "Everyone enrolled in your gallery", "Gallery",
              tag="your workspace"),
    Operation("POST", "/gallery/{person}", listing.enrol, "Enrol a photo of a person (its one face)", "Enrolled",
              ("photo",), writes=True, group="embedder", tag="your workspace"),
    Operation("DELETE", "/gallery/{person}", listing.forget, "Delete a person from your gallery", "Deleted",
              writes=True, tag="your workspace"),
    Operation("GET", "/models", listing.cards, "Every model's card and settings", "Models", tag="models"),
)


async def read_body(request: Request, cap: int) -> bytes:
    """The body, refused as soon as it passes ``cap`` bytes (declared or sent)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise TooLarge(_too_large(int(declared), cap))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise TooLarge(_too_large(size, cap))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, cap: int) -> str:
    return (f"The body is {'over ' if size <= cap + 1 else ''}{size / 2**20:.1f} MB; the limit for this call is "
            f"{cap / 2**20:.0f} MB (each photo at most 25 MB).")


def _source(request: Request) -> str:
    """Where a call came from, as the keys page shows it (address and program)."""
    host = request.client.host if request.client else "?"
    return f"{host} · {request.headers.get('user-agent', '')[:80]}"


async def _call(operation: Operation, request: Request) -> Response:
    header = request.headers.get("authorization")
    access = remembered(header) or await run_in_threadpool(authenticate, header, _source(request))
    if operation.writes and not access.writable:
        raise Forbidden(f"The key “{access.name}” is read-only; changing the gallery needs a read-write key "
                        "(make one on the API keys page).")
    limiter().take(access.key_id)
    with pool().slot():
        body = b""
        if operation.photos:
            try:
                body = await asyncio.wait_for(read_body(request, body_cap(len(operation.photos))), BODY_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise TooSlow(f"The body took over {BODY_TIMEOUT_S:.0f} s to arrive; send it faster.") from None
        call = work.Call(access, dict(request.query_params), dict(request.path_params), body,
                         request.headers.get("content-type", ""))
        return answer(await pool().run(operation.work, call))


def endpoint(operation: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        try:
            return await _call(operation, request)
        except Exception as error:  # noqa: BLE001 - every failure is an answer; a bug is logged in failure()
            return failure(error)

    handle.__name__ = operation.work.__name__
    return handle


def api_routes() -> list[Route]:
    return [Route(VERSION + op.path, endpoint(op), methods=[op.method]) for op in OPERATIONS]


async def not_found(request: Request) -> Response:
    """Any other path under /api: 405 for a known path with another method, else 404, as JSON."""
    allowed = sorted({m for r in api_routes() if r.matches(request.scope)[0] == Match.PARTIAL for m in r.methods or ()})
    if allowed:
        return answer({"error": f"{request.url.path} takes {', '.join(allowed)}, not {request.method}."}, 405,
                      {"Allow": ", ".join(allowed)})
    return failure(NotFound(f"There is no API call {request.method} {request.url.path}; see {PREFIX}/docs."))
