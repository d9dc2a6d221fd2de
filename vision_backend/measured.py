"""The figures measured on this machine (``bench/results.json``), by model card.

A card says what its publisher measured; the benchmarks say what the model does here, on the staged
photos and data sets. A bench records each figure with the cards it is about (``Bench.about``), and a
per-model figure is named after its card (``yunet_640x480_ms``), so no table of names lives here.
Results keep every run, quick checks included; a card shows each figure's latest full
(non-``--quick``) value with its date and machine. This VM's speed moves 1.4-4x from day to day, so
beside each time goes its ``_vs_raw`` ratio (the product over the bare library call, measured in the same
run), which holds across days where a time does not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results.json"
TIME_UNITS = ("ms", "s")
RATE_UNITS = ("FPS", "photos/s", "images/s")


@dataclass(frozen=True)
class Figure:
    """One figure's latest full run: value, unit, which bench, when (UTC, ISO) and on what machine."""

    name: str
    value: float
    unit: str
    bench: str
    time: str
    machine: str
    vs_raw: float | None = None
    """The product over the bare library call in the same run, beside a time (None where not measured)."""
    cards: tuple[str, ...] = ()
    """The model and data-set cards the figure is about."""

    @property
    def date(self) -> str:
        return self.time[:10]

    @property
    def is_time(self) -> bool:
        return self.unit in TIME_UNITS


def ratio_name(name: str) -> str | None:
    """The ``_vs_raw`` figure that belongs beside ``name`` (``NAME_ms``, ``NAME_s``, ``NAME_fps``: a rate of a
    timed call), or None (not a time, or a bare call's own)."""
    if name.endswith("_raw_ms") or name.endswith("_vs_raw"):
        return None
    for suffix in ("_ms", "_s", "_fps"):
        if name.endswith(suffix):
            return name[: -len(suffix)] + "_vs_raw"
    return None


def latest(path: Path | None = None) -> dict[str, Figure]:
    """Every figure name's latest full (non-quick) value, with its ``_vs_raw`` ratio; {} without results."""
    try:
        rows = json.loads(Path(path or RESULTS).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    chosen: dict[str, dict] = {}
    for row in rows:
        if not row.get("quick") and row["time"] >= chosen.get(row["name"], {}).get("time", ""):
            chosen[row["name"]] = row
    figures = {name: Figure(name, float(r["value"]), r["unit"], r["bench"], r["time"], r.get("machine", ""),
                            cards=tuple(r.get("cards", ()))) for name, r in chosen.items()}
    return {name: _with_ratio(f, figures) for name, f in figures.items()}


def _with_ratio(figure: Figure, figures: dict[str, Figure]) -> Figure:
    ratio = figures.get(ratio_name(figure.name) or "")
    if ratio is None:
        return figure
    return Figure(**{**figure.__dict__, "vs_raw": ratio.value})


def for_card(name: str, figures: dict[str, Figure] | None = None) -> list[Figure]:
    """The figures measured here on card ``name``: its own times first (the model's latency heads the list), then
    rates, then what was found, each by bench and name."""
    figures = latest() if figures is None else figures
    mine = [f for f in figures.values() if name in f.cards and not f.name.endswith(("_vs_raw", "_raw_ms"))]

    def order(f: Figure) -> tuple:
        kind = 0 if f.is_time else 1 if f.unit in RATE_UNITS else 2
        return kind, not f.name.startswith(f"{name}_"), f.bench, f.name

    return sorted(mine, key=order)


def by_bench(figures: Iterable[Figure]) -> dict[str, list[Figure]]:
    """Figures grouped by the bench that measured them, benches and figures sorted by name."""
    groups: dict[str, list[Figure]] = {}
    for figure in sorted(figures, key=lambda f: (f.bench, f.name)):
        groups.setdefault(figure.bench, []).append(figure)
    return groups


def shown(figure: Figure, ratio: bool = True) -> str:
    """A figure as people read it: ``6.39 ms (1.21x raw)``, ``94.1%`` for a fraction."""
    if figure.unit == "fraction":
        text = f"{figure.value:.1%}"
    else:
        text = f"{figure.value:,.4g} {figure.unit}"
    return text + (f" ({figure.vs_raw:.2f}x raw)" if ratio and figure.vs_raw is not None else "")


def headline(name: str, figures: dict[str, Figure] | None = None) -> str:
    """A card's first figure measured here, named (``yunet_640x480_ms: 6.39 ms``); empty when none."""
    found = for_card(name, figures)
    return f"{found[0].name}: {shown(found[0])}" if found else ""
