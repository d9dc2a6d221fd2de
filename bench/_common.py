"""Shared by the benchmark scripts: medians after warm-up, one line per figure, results.json."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()} {os.cpu_count()} cores {memory:.0f} GiB, Python {platform.python_version()}"


def median_ms(function: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``function`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


class Recorder:
    """Prints ``name value unit`` lines and appends each to bench/results.json as it is measured
    (a long benchmark stopped half-way keeps what it measured)."""

    def __init__(self, bench: str):
        self.bench = bench
        self.records: list[dict] = []

    def __call__(self, name: str, value: float, unit: str) -> None:
        value = float(f"{float(value):.4g}") if abs(value) < 10 else round(float(value), 2)
        print(f"{name} {value} {unit}", flush=True)
        row = {"bench": self.bench, "name": name, "value": value, "unit": unit,
               "time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine()}
        self.records.append(row)
        existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
        partial = RESULTS.with_suffix(".partial")
        partial.write_text(json.dumps(existing + [row], indent=1) + "\n")
        partial.replace(RESULTS)

    def save(self) -> None:
        """Kept for the scripts' last line: every figure is already written."""
