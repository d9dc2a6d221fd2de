"""The API as the pages show it: this server's address and ready-to-paste curl and Python examples.

Not a page itself (the underscore): Home and the API keys page use it. An example never holds a real key
(a key is shown once, when made): it reads ``$VISION_LAB_KEY``.
"""

from __future__ import annotations

from urllib.parse import quote, urlparse

import streamlit as st

from vision_backend.api import PREFIX
from vision_backend.workspace import Workspace


def server_url() -> str:
    """This server's address as the visitor's browser reaches it (``http://localhost:8501`` when unknown)."""
    try:
        found = urlparse(st.context.url or "")
    except Exception:  # noqa: BLE001 - no browser context (a test run)
        found = urlparse("")
    return f"{found.scheme}://{found.netloc}" if found.scheme and found.netloc else "http://localhost:8501"


def trained_projects(space: Workspace, most: int = 20) -> dict[str, list[str]]:
    """The workspace's projects that have a trained model, with the newest model's classes."""
    found = {}
    for name in space.projects()[:most]:
        newest = space.project(name, create=False).models.newest()
        if newest is not None:
            found[name] = list(newest.meta.get("classes", []))
    return found


def examples(call: str) -> tuple[str, str]:
    """(curl, Python) for a POST of one photo to ``call`` (a path under the API's prefix)."""
    url = f"{server_url()}{PREFIX}/{call}"
    curl = f'curl -H "Authorization: Bearer $VISION_LAB_KEY" -F photo=@photo.jpg \\\n  {url}'
    python = (f"import os\n\nimport requests\n\nanswer = requests.post(\n    \"{url}\",\n"
              "    headers={\"Authorization\": f\"Bearer {os.environ['VISION_LAB_KEY']}\"},\n"
              "    files={\"photo\": open(\"photo.jpg\", \"rb\")},\n    timeout=60,\n)\nprint(answer.json())")
    return curl, python


def show_examples(call: str, what: str) -> None:
    curl, python = examples(call)
    st.caption(what)
    left, right = st.tabs(["curl", "Python"])
    left.code(curl, language="bash")
    right.code(python, language="python")


def project_example(space: Workspace, key: str) -> None:
    """The curl and Python example for the person's own project (else ImageNet's labels), as Teachable Machine
    shows one for its exports; a key comes from the API keys page."""
    projects = trained_projects(space)
    if projects:
        name = st.selectbox("Project", list(projects), key=key) if len(projects) > 1 else next(iter(projects))
        show_examples(f"projects/{quote(name, safe='')}/predict", f"Your project **{name}** "
                      f"({', '.join(projects[name][:6])}) from any program: the answer is its label and each "
                      "class's probability.")
    else:
        show_examples("classify", "ImageNet's labels from any program. Train a project on the Transfer learning "
                      "page and its own example appears here.")
    st.page_link("pages/api_keys.py", label="Make a key (export it as VISION_LAB_KEY)", icon=":material/key:")
    st.caption(f"Every call and its settings: [{PREFIX}/docs]({server_url()}{PREFIX}/docs) · "
               f"OpenAPI 3.1: [{PREFIX}/openapi.json]({server_url()}{PREFIX}/openapi.json)")
