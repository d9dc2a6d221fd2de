"""The OpenAPI 3.1 document and the docs page, made from the calls' table and the registry.

Every call of :data:`~vision_backend.api.routes.OPERATIONS` is described from its own entry: its photos (a
multipart file or base64 JSON), ``?model=`` with the names of its registry group, and each setting of those
models as a query parameter typed and bounded by its :class:`~vision_backend.model.Param`; its answer's schema
is the batch command's row. So a model registered later, or a setting added to one, is documented at once,
and the fuzzing tests (``schemathesis``) check every call against what this document promises.
"""

from __future__ import annotations

import html
from typing import Any

from vision_backend import models
from vision_backend.api.routes import OPERATIONS, PREFIX, Operation
from vision_backend.api.work import TOP
from vision_backend.model import Param

NUMBER, INTEGER, STRING = {"type": "number"}, {"type": "integer"}, {"type": "string"}
BOX = {"score": NUMBER, "x1": NUMBER, "y1": NUMBER, "x2": NUMBER, "y2": NUMBER}


def obj(properties: dict[str, Any], required: tuple[str, ...] = (), **more: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), **more}


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _row(count: str, detection: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    """A batch row with ``--per photo``: the photo's fields and its detections."""
    return obj({"path": STRING, "model": STRING, count: INTEGER,
                "detections": array(obj({**detection, **BOX}, ("score", "x1", "y1", "x2", "y2", *required)))},
               ("path", "model", count, "detections"))


LABEL = obj({"label": STRING, "id": STRING, "probability": NUMBER}, ("label", "probability"))
ANSWERS: dict[str, dict[str, Any]] = {
    "Error": obj({"error": STRING, "path": STRING}, ("error",)),
    "Classified": obj({"path": STRING, "model": STRING, "label": STRING, "id": STRING, "probability": NUMBER,
                       "top": array(LABEL)}, ("path", "model", "label", "probability", "top")),
    "Faces": _row("faces", {"face": INTEGER, "landmarks": array(array(NUMBER))}, ("face",)),
    "Objects": _row("objects", {"object": INTEGER, "label": STRING, "category_id": INTEGER, "mask_area": INTEGER,
                                "mask": {"type": "object"}}, ("object", "label")),
    "Embedded": _row("faces", {"face": INTEGER, "embedding": array(NUMBER)}, ("face", "embedding")),
    "Recognized": _row("faces", {"face": INTEGER, "name": STRING, "distance": NUMBER, "nearest": STRING},
                       ("face", "name", "distance")),
    "Verified": obj({"model": STRING, "same": {"type": "boolean"}, "distance": NUMBER, "threshold": NUMBER,
                     "photo_a": obj({"path": STRING, "faces": INTEGER, **BOX}, ("path", "faces")),
                     "photo_b": obj({"path": STRING, "faces": INTEGER, **BOX}, ("path", "faces"))},
                    ("model", "same", "distance", "threshold", "photo_a", "photo_b")),
    "Predicted": obj({"path": STRING, "model": STRING, "label": STRING, "probability": NUMBER,
                      "probabilities": {"type": "object", "additionalProperties": NUMBER}},
                     ("path", "model", "label", "probability", "probabilities")),
    "Projects": obj({"projects": array(obj({"name": STRING, "model": {"type": ["string", "null"]},
                                            "classes": array(STRING), "trained": {"type": ["number", "null"]}},
                                           ("name", "model", "classes")))}, ("projects",)),
    "Gallery": obj({"people": array(obj({"name": STRING, "faces": INTEGER}, ("name", "faces")))}, ("people",)),
    "Enrolled": obj({"person": STRING, "path": STRING, "model": STRING,
                     "result": {"enum": ["enrolled", "already enrolled"]}}, ("person", "path", "result")),
    "Deleted": obj({"deleted": STRING}, ("deleted",)),
    "Models": obj({"models": array(obj({"name": STRING, "title": STRING, "group": STRING, "ready": {"type": "boolean"},
                                        "settings": array({"type": "object"})}, ("name", "group", "ready")))},
                  ("models",)),
}
FAILURES = {400: "The photo, a setting or the body cannot be used (the message says which and why)",
            401: "No key, a wrong key or a revoked key", 404: "No such project, person, detector or call",
            408: "The body took too long to arrive", 413: "The body is over its cap",
            415: "The body is neither multipart/form-data nor JSON",
            429: "Over this key's rate, or every worker busy: wait Retry-After seconds",
            503: "A model's files are not on this server, or storage is unreachable"}


def param_schema(params: list[Param]) -> dict[str, Any]:
    """One query parameter's schema for every model's same-named setting (the widest bounds, every option)."""
    first = params[0]
    if first.kind == "toggle":
        return {"type": "boolean"}
    if all(p.kind == "choice" for p in params):
        options = list(dict.fromkeys(o for p in params for o in p.options))
        return {"enum": options}
    kind = "integer" if all(p.kind == "int" for p in params) else "number"
    bounds: dict[str, Any] = {"type": kind}
    lows, highs = [p.low for p in params if p.low is not None], [p.high for p in params if p.high is not None]
    if lows:
        bounds["minimum"] = min(lows)
    if highs:
        bounds["maximum"] = max(highs)
    return bounds


def _settings(operation: Operation) -> dict[str, list[Param]]:
    chosen = list(models.GROUPS.get(operation.group, {}).values())
    if operation.detector:
        chosen += list(models.GROUPS["face detector"].values())
    found: dict[str, list[Param]] = {}
    for model in chosen:
        for param in model.params:
            found.setdefault(param.name, []).append(param)
    return found


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def ready(group: str) -> list[str]:
    """The group's models whose files are on this server now (all of them when none is: the call then says how
    to get one); a model fetched later is in the next document."""
    names = [n for n, m in models.GROUPS[group].items() if m.ready()]
    return names or list(models.GROUPS[group])


def parameters(operation: Operation) -> list[dict[str, Any]]:
    """Path names, ``model`` (and ``detector``, ``top``) and every setting as query parameters."""
    found = [{"name": n, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1,
                                                                      "maxLength": 100}}
             for n in ("name", "person") if f"{{{n}}}" in operation.path]
    if operation.group:
        default = models.default({"classifier": "classify", "face detector": "faces", "object detector": "objects",
                                  "embedder": "embed"}[operation.group]).name
        missing = [n for n in models.GROUPS[operation.group] if n not in ready(operation.group)]
        found.append(_query("model", {"enum": ready(operation.group)}, f"the model (default {default})" + (
            f"; also registered, but not on this server yet: {', '.join(missing)}" if missing else "")))
    if operation.detector:
        found.append(_query("detector", {"enum": ready("face detector")}, "the face finder"))
    if operation.path == "/classify":
        found.append(_query("top", {"type": "integer", "minimum": TOP.low, "maximum": TOP.high}, TOP.help))
    if operation.photos and operation.path != "/gallery/{person}":
        found += [_query(n, param_schema(p), f"a setting of {', '.join(dict.fromkeys(q.label for q in p))}")
                  for n, p in _settings(operation).items()]
    return found


def request_body(operation: Operation) -> dict[str, Any]:
    files = {f: {"type": "string", "format": "binary"} for f in operation.photos}
    encoded = {f: {"type": "string", "contentEncoding": "base64"} for f in operation.photos}
    names = {f"{f}_name": {"type": "string", "maxLength": 255} for f in operation.photos}
    return {"required": True, "content": {
        "multipart/form-data": {"schema": obj(files, operation.photos)},
        "application/json": {"schema": obj({**encoded, **names}, operation.photos, additionalProperties=False)}}}


def responses(operation: Operation) -> dict[str, Any]:
    def ref(name: str) -> dict[str, Any]:
        return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}

    failures = {**FAILURES, **({403: "The key is read-only"} if operation.writes else {})}
    return {"200": {"description": "The answer (the batch command's row)", "content": ref(operation.answer)},
            **{str(code): {"description": text, "content": ref("Error")} for code, text in sorted(failures.items())}}


def operation_object(operation: Operation) -> dict[str, Any]:
    described = {"summary": operation.summary, "description": (operation.work.__doc__ or "").strip(),
                 "operationId": operation.work.__name__, "tags": [operation.tag],
                 "parameters": parameters(operation), "responses": responses(operation)}
    if operation.photos:
        described["requestBody"] = request_body(operation)
    return described


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every call, as the registry stands now."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = operation_object(op)
    return {"openapi": "3.1.0", "info": {"title": "Vision Lab API", "version": "1",
                                         "description": INTRODUCTION},
            "servers": [{"url": "/"}], "paths": paths, "security": [{"key": []}],
            "components": {"schemas": ANSWERS, "securitySchemes": {"key": {
                "type": "http", "scheme": "bearer", "description": "An API key from the API keys page"}}}}


INTRODUCTION = (
    "The pages' models, your own trained classes and your face gallery over HTTP. Send a key made on the API keys "
    "page as `Authorization: Bearer KEY`; it reaches only the workspace it was made in. Photos go as a "
    "multipart file (`curl -F photo=@cat.jpg`) or as base64 in a JSON object (`{\"photo\": \"...\"}`); the model "
    "and its settings are query parameters (`?model=mtcnn&min_face_size=40`), checked as the command line's "
    "`--set`. Answers are the batch command's rows, boxes in the photo's own pixels; a failure is "
    "`{\"error\": message}` with its HTTP status.")


def docs_page(spec: dict[str, Any]) -> str:
    """A plain HTML page of every call (no script, nothing fetched from elsewhere)."""
    parts = [f"<h1>{html.escape(spec['info']['title'])}</h1><p>{html.escape(spec['info']['description'])}</p>",
             f'<p>Machine-readable: <a href="{PREFIX}/openapi.json">{PREFIX}/openapi.json</a> (OpenAPI 3.1).</p>']
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            rows = "".join(f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{p['in']}</td>"
                           f"<td><code>{html.escape(_short(p['schema']))}</code></td>"
                           f"<td>{html.escape(p.get('description', ''))}</td></tr>" for p in op["parameters"])
            body = ", ".join(op.get("requestBody", {}).get("content", {}).get("multipart/form-data", {})
                             .get("schema", {}).get("required", []))
            parts.append(f"<h2><code>{method.upper()} {html.escape(path)}</code></h2><p>{html.escape(op['summary'])}."
                         f" {html.escape(op['description'])}</p>" + (f"<p>Photos: {html.escape(body)}</p>" if body else "")
                         + (f"<table><tr><th>name</th><th>in</th><th>schema</th><th>what</th></tr>{rows}</table>"
                            if rows else ""))
    style = "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}td,th{padding:.2rem .6rem;" \
            "text-align:left;border-bottom:1px solid #ddd}code{background:#f3f5f9}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>Vision Lab API</title><style>{style}</style>" \
           f"</head><body>{''.join(parts)}</body></html>"


def _short(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(map(str, schema["enum"]))
    bounds = [str(schema[k]) for k in ("minimum", "maximum") if k in schema]
    return schema.get("type", "") + (f" {'..'.join(bounds)}" if len(bounds) == 2 else "")
