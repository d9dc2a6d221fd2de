"""The shape the redesign left, kept: short functions, short top-level blocks, a backend without Streamlit
and engines imported in one place, no module that both stores data and runs a model."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

SOURCES = sorted([*(ROOT / "pages").glob("*.py"), *(ROOT / "vision_backend").rglob("*.py")])
ENGINES = {"tensorflow", "keras", "onnxruntime", "mtcnn", "dlib", "ai_edge_litert"}


def spans(path: Path) -> list[tuple[str, int]]:
    """(name, lines) of every function and of every top-level statement (a top-level block)."""
    tree = ast.parse(path.read_text())
    found = [(f"{node.name}()", node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    found += [(f"top-level block at line {node.lineno}", node.end_lineno - node.lineno + 1) for node in tree.body
              if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_functions_and_blocks_are_short(path: Path) -> None:
    too_long = [(name, lines) for name, lines in spans(path)
                if lines > (45 if name.endswith("()") else 40)]
    assert too_long == [], too_long


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_the_backend_never_imports_streamlit_and_only_engines_imports_the_engines() -> None:
    for path in (ROOT / "vision_backend").rglob("*.py"):
        modules = imported_modules(path)
        assert "streamlit" not in modules, path
        if path.name != "engines.py":
            assert not modules & ENGINES, (path, modules & ENGINES)
    for path in (ROOT / "pages").glob("*.py"):
        assert not imported_modules(path) & ENGINES, path
