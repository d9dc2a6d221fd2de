"""Write ``bench/REPORT.md`` from ``bench/results.json``: per bench, each figure's latest full run.

A figure's value, unit, date and machine, and beside each time its ``_vs_raw`` ratio (the product over
the bare library call in the same run). Quick runs (``--quick``: a check that a script runs) are left out.

python bench/report.py [--results bench/results.json] [--out bench/REPORT.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vision_backend import measured  # noqa: E402

HEADER = """# Benchmark report

Made by `python bench/report.py` from `bench/results.json`: each figure's latest full run (`--quick` runs left
out), per bench. What each figure measures is in its script's docstring (`bench/<bench>.py`).

This shared VM's speed moves by 1.4-4x from day to day, so a time here is one day's time. Beside each time is
its `_vs_raw` ratio where the bench measures one: the product's time over the bare library call's at the same
settings, alternated in the same run. Ratios are the figures to compare across days and machines.
"""


def _cell(figure: measured.Figure) -> str:
    return f"{figure.value:.4g}" if abs(figure.value) < 10 else f"{figure.value:,.2f}"


def table(figures: list[measured.Figure]) -> list[str]:
    """One bench's figures as a Markdown table (the ratios themselves are shown beside their times)."""
    beside = {measured.ratio_name(f.name) for f in figures if f.vs_raw is not None}
    lines = ["| figure | value | unit | vs raw | date | machine |", "|---|--:|---|--:|---|---|"]
    for f in figures:
        if f.name in beside:
            continue
        ratio = f"{f.vs_raw:.2f}x" if f.vs_raw is not None else ""
        lines.append(f"| `{f.name}` | {_cell(f)} | {f.unit} | {ratio} | {f.date} | {f.machine} |")
    return lines


def report(figures: dict[str, measured.Figure]) -> str:
    times = [f for f in figures.values() if f.is_time and measured.ratio_name(f.name)]
    with_ratio = sum(f.vs_raw is not None for f in times)
    lines = [HEADER, f"Times with their ratio beside them: {with_ratio} of {len(times)} (a cold load or a "
                     "whole-pipeline time has no bare call to compare with; runs before the harness had no ratios).\n"]
    for bench, rows in measured.by_bench(figures.values()).items():
        lines += [f"## {bench}", "", f"`python bench/{bench}.py`", "", *table(rows), ""]
    if not figures:
        lines.append("No full runs recorded yet.\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python bench/report.py", description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=measured.RESULTS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "REPORT.md")
    args = parser.parse_args(argv)
    figures = measured.latest(args.results)
    args.out.write_text(report(figures))
    print(f"{args.out}: {len(figures)} figures from {len(measured.by_bench(figures.values()))} benches")


if __name__ == "__main__":
    main()
