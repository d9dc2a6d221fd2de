"""The HTTP API: the pages' models, a person's own trained classes and face gallery, from any program.

It is a Starlette application served at ``/api`` by the Streamlit server itself (``app.py`` hands
:class:`ServedFirst` to ``streamlit.starlette.App`` as middleware), so an API call and a page visit share one
process: the same loaded models (the registry's instances, under the same locks), the same workspaces, the
same storage. One module a concern: :mod:`~.routes` (the calls as data, and the one handler), :mod:`~.work`
and :mod:`~.listing` (what each call computes, in a worker thread), :mod:`~.inputs` (photos and settings in),
:mod:`~.answers` (JSON and errors out), :mod:`~.keys` (API keys per workspace), :mod:`~.limits` (rate, pool,
caps), :mod:`~.schema` (OpenAPI 3.1 and the docs page) and :mod:`~.server` (the server's start and stop).
Nothing here imports Streamlit.
"""

from __future__ import annotations

import re
from typing import TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from vision_backend.api.answers import answer
from vision_backend.api.routes import MOUNT, PREFIX, VERSION, api_routes, not_found
from vision_backend.api.schema import docs_page, document
from vision_backend.api.server import lifespan


async def openapi(request: Request) -> Response:
    return answer(document())


async def docs(request: Request) -> Response:
    return HTMLResponse(docs_page(document()))


Routed = TypeVar("Routed", Route, Mount)


def any_character(route: Routed) -> Routed:
    """``route`` matching paths with any character in them: Starlette's patterns stop at a line break (``.``), so a
    name holding one (``/api/v1/gallery/a%0Ab``) would miss every route and get Starlette's plain-text 404
    instead of the API's JSON answer."""
    route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)
    return route


def application() -> Starlette:
    """The API as an ASGI application whose routes start at ``/v1`` (mount it at ``/api``)."""
    routes = [*api_routes(), Route(f"{VERSION}/openapi.json", openapi, methods=["GET"]),
              Route(f"{VERSION}/docs", docs, methods=["GET"]),
              Route("/{rest:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])]
    return Starlette(routes=[any_character(route) for route in routes])


def mount() -> Mount:
    """The API mounted where the server serves it: ``/api`` (so ``/api/v1/...``)."""
    return any_character(Mount(MOUNT, app=application()))


class ServedFirst:
    """ASGI middleware that answers ``/api/...`` itself, ahead of the server's own stack, and hands every other
    request on. Streamlit's middleware (path checks for its static files, its session cookie, gzip) and router
    cost about 1 ms of the event loop's time a call and do nothing for the API; on 2 cores that was a sixth of
    a call's whole cost."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.api = Router(routes=[mount()])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(MOUNT + "/"):
            await self.api(scope, receive, send)
        else:
            await self.app(scope, receive, send)


__all__ = ["PREFIX", "ServedFirst", "application", "lifespan", "mount"]
