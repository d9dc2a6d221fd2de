"""The one harness every benchmark script uses: arguments, warm-up, medians, records, ratios.

A script says what it measures and nothing else::

    bench = Bench("face_detection", __doc__)
    with bench.about(detector.name):  # the figures of one model: named after its card, shown on it
        bench.compare(f"{detector.name}_640x480", lambda: product(), lambda: bare_library_call())
        bench.record(f"{detector.name}_group_photos_recall", 0.94, "fraction")

Every figure is printed as ``name value unit`` and appended to ``bench/results.json`` as soon as
it is measured (a long run stopped half-way keeps what it measured). This shared VM's speed moves
by 1.4-4x from day to day, so :meth:`Bench.compare` times the product and the bare library call
at the same settings in the same run, alternating them, and records the ratio ``NAME_vs_raw``
(product over bare): a ratio holds across days where a time does not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("VISION_BENCH_RESULTS") or ROOT / "bench" / "results.json")
"""Where figures go (``VISION_BENCH_RESULTS`` points a trial run elsewhere)."""
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()} {os.cpu_count()} cores {memory:.0f} GiB, Python {platform.python_version()}"


CHILD_PEAK_RSS_MB = ('next(int(l.split()[1]) for l in open("/proc/self/status") '
                     'if l.startswith("VmHWM:")) / 1024')
"""An expression a child process prints for its own peak memory: ``ru_maxrss`` would start at its
parent's peak on Linux (a child of a 400 MB process reports 425 MB where its own high-water mark is 9)."""


def peak_rss_mb() -> float:
    """This process's own peak resident memory so far, in MiB (the kernel's high-water mark)."""
    return eval(CHILD_PEAK_RSS_MB)  # noqa: S307 — a fixed expression of ours


def in_fresh_process(code: str) -> object:
    """The last line (JSON) a fresh Python process running ``code`` prints, started from the repository's root
    (a cold load, or a process's own memory, can only be measured in a process of its own)."""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return json.loads(result.stdout.strip().splitlines()[-1])


def _timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1000


class Bench:
    """One benchmark run: ``--quick`` for fewer repeats, and a record of every figure."""

    def __init__(self, name: str, doc: str | None = None, argv: list[str] | None = None,
                 extra: Callable[[argparse.ArgumentParser], None] | None = None):
        parser = argparse.ArgumentParser(prog=f"python bench/{name}.py", description=(doc or "").split("\n")[0])
        parser.add_argument("--quick", action="store_true", help="fewer repeats: a check that it runs, not a figure")
        if extra:
            extra(parser)
        self.args = parser.parse_args(argv)
        self.quick = self.args.quick
        self.name = name
        self.cards: tuple[str, ...] = ()

    @contextlib.contextmanager
    def about(self, *cards: str) -> Iterator[None]:
        """Figures recorded in the block are about these model or data-set cards (the Models page shows each
        card's own figures, found by this, never by a table of names)."""
        before, self.cards = self.cards, tuple(dict.fromkeys((*self.cards, *cards)))
        try:
            yield
        finally:
            self.cards = before

    def repeats(self, full: int, quick: int = 3) -> int:
        return quick if self.quick else full

    def time(self, function: Callable[[], object], repeats: int, warmup: int = 1) -> float:
        """Median wall time of ``function`` in milliseconds, after ``warmup`` untimed calls."""
        for _ in range(warmup):
            function()
        return statistics.median(_timed(function) for _ in range(repeats))

    def compare(self, name: str, product: Callable[[], object], raw: Callable[[], object], repeats: int,
                warmup: int = 2) -> float:
        """Times ``product`` and the bare library call ``raw``, alternating, and records ``NAME_ms``,
        ``NAME_raw_ms`` and ``NAME_vs_raw`` (product / raw). Returns the product's median."""
        for _ in range(warmup):
            product()
            raw()
        mine, bare = [], []
        for _ in range(repeats):
            mine.append(_timed(product))
            bare.append(_timed(raw))
        product_ms, raw_ms = statistics.median(mine), statistics.median(bare)
        self.record(f"{name}_ms", product_ms, "ms")
        self.record(f"{name}_raw_ms", raw_ms, "ms")
        self.record(f"{name}_vs_raw", product_ms / raw_ms, "ratio")
        return product_ms

    def compare_in_blocks(self, name: str, product: Callable[[], object], raw: Callable[[], object], rounds: int,
                          per_block: int) -> float:
        """:meth:`compare`'s figures, timed block by block (alternating blocks, medians of medians).

        An engine whose threads spin on for a while after each call (a default ONNX Runtime session,
        OpenCV's pool) slows whatever runs right after it: timed call by call, the batch classifier
        lost half its speed (52 ms against 28 ms in blocks), which measures the two slowing each other.
        """
        mine, bare = [], []
        for _ in range(rounds):
            mine.append(self.time(product, per_block, warmup=2))
            bare.append(self.time(raw, per_block, warmup=2))
        product_ms, raw_ms = statistics.median(mine), statistics.median(bare)
        self.record(f"{name}_ms", product_ms, "ms")
        self.record(f"{name}_raw_ms", raw_ms, "ms")
        self.record(f"{name}_vs_raw", product_ms / raw_ms, "ratio")
        return product_ms

    def record(self, name: str, value: float, unit: str) -> None:
        value = float(f"{float(value):.4g}") if abs(value) < 10 else round(float(value), 2)
        print(f"{name} {value} {unit}", flush=True)
        row = {"bench": self.name, "name": name, "value": value, "unit": unit, "quick": self.quick,
               "time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
               **({"cards": list(self.cards)} if self.cards else {})}
        existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
        partial = RESULTS.with_name(f".results.{os.getpid()}.tmp")
        partial.write_text(json.dumps(existing + [row], indent=1) + "\n")
        partial.replace(RESULTS)
