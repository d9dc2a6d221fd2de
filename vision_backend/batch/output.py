"""Rows written as the output file's extension says, and what an earlier run already wrote there.

``.csv`` and ``.jsonl`` are appended to as each batch finishes, so a run that is killed keeps every
row it wrote and ``--resume`` carries on from there: a half-written last line is cut off first, and a
photo counts as done only when all its rows are there (a photo says how many detections it has), so a
photo cut short is done again. ``.parquet`` cannot be appended to: each batch is a part file of its own
in a hidden folder beside it, merged into the file when the run ends or is stopped, and a killed run's
parts are picked up by ``--resume``. ``.npy`` (face embeddings only) writes the vectors as one float32
array and the rows beside it as ``NAME.jsonl``, each with the ``vector`` row it points to. The output's
folder is checked to be writable before any photo is read. Nested
fields (top-k, landmarks, masks) are JSON text in CSV and Parquet, native in JSON Lines; every row
has ``path``, and a photo that could not be done has ``error`` and nothing else.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from vision_backend.batch.tasks import Column
from vision_backend.errors import BadInput
from vision_backend.storage import atomic_path, sweep_temp
from vision_backend.storage.files import scratch_file

FORMATS = (".csv", ".jsonl", ".parquet", ".npy")


class Writer:
    """Rows in, a file out; ``done`` is the set of photos the file held whole before this run."""

    def __init__(self, path: Path, columns: list[Column], resume: bool, count: str = ""):
        self.path, self.columns, self.count = Path(path), columns, count
        self.names = [c.name for c in columns]
        self.done: set[str] = self.finished(self.read_rows()) if resume and self.has_earlier() else set()

    def has_earlier(self) -> bool:
        """True when an earlier run left rows to resume from."""
        return self.path.exists()

    def finished(self, rows: list[dict[str, Any]]) -> set[str]:
        """The photos whose rows are all there (an error row, or as many rows as the photo's count says); the
        rows of a photo cut short are dropped from the file, so it is done again whole."""
        seen: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            seen.setdefault(row["path"], []).append(row)
        whole = {path for path, mine in seen.items() if self._whole(mine)}
        if len(whole) < len(seen):
            self.keep_only([row for row in rows if row["path"] in whole])
        return whole

    def _whole(self, rows: list[dict[str, Any]]) -> bool:
        if any(row.get("error") not in (None, "") for row in rows) or not self.count:
            return True
        expected = rows[0].get(self.count)
        try:
            return len(rows) == max(1, int(expected))
        except (TypeError, ValueError):
            return True  # a per-photo row (--per photo): one row holds them all

    def read_rows(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def keep_only(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite the file with these rows only (before appending)."""
        raise NotImplementedError

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def read_done(self) -> set[str]:
        raise NotImplementedError

    def write(self, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file (called even when the run is stopped half-way)."""

    def _check_columns(self, found: list[str]) -> None:
        if found != self.names:
            raise BadInput(f"{self.path} was written by another command or model (its columns are "
                             f"{', '.join(found)}); write to another file or drop --resume")


def open_writer(path: str | Path, columns: list[Column], resume: bool = False, count: str = "") -> Writer:
    """The writer for ``path``'s format; ``count`` is the photo field that says how many rows a photo has."""
    path = Path(path)
    kinds = {".csv": CsvWriter, ".jsonl": JsonlWriter, ".parquet": ParquetWriter, ".npy": NpyWriter}
    if path.suffix.lower() not in kinds:
        raise BadInput(f"--out must end in {', '.join(FORMATS)}, not {path.name!r}")
    writable(path.parent)
    return kinds[path.suffix.lower()](path, columns, resume, count)


def writable(folder: Path) -> None:
    """The output's folder made and written to once, before any photo is read: a run that could not keep its
    results must not do the work first."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with scratch_file(folder):
            pass
    except OSError as error:
        raise BadInput(f"cannot write to {folder}: {error.strerror or error}. Choose another --out.") from None


def _text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _cut_partial_line(path: Path) -> None:
    """Drop a last line without its newline (a run killed mid-write) so appending starts clean."""
    with open(path, "rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


# ---- CSV and JSON Lines: appended batch by batch ------------------------------------------------
class CsvWriter(Writer):
    def __init__(self, path: Path, columns: list[Column], resume: bool, count: str = ""):
        super().__init__(path, columns, resume, count)
        fresh = not (resume and path.exists() and path.stat().st_size)
        self.handle = open(path, "w" if fresh else "a", newline="", encoding="utf-8")
        self.rows = csv.DictWriter(self.handle, self.names, extrasaction="ignore")
        if fresh:
            self.rows.writeheader()
        self.nested = {c.name for c in columns if c.kind in ("json", "vector")}

    def read_rows(self) -> list[dict[str, Any]]:
        _cut_partial_line(self.path)
        with open(self.path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None:
                return []
            self._check_columns(list(reader.fieldnames))
            return list(reader)

    def keep_only(self, rows: list[dict[str, Any]]) -> None:
        with atomic_path(self.path) as temp, open(temp, "w", newline="", encoding="utf-8") as handle:
            kept = csv.DictWriter(handle, self.names, extrasaction="ignore")
            kept.writeheader()
            kept.writerows(rows)

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.rows.writerows({k: _text(v) if k in self.nested and v is not None else v for k, v in row.items()}
                            for row in rows)
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


class JsonlWriter(Writer):
    def __init__(self, path: Path, columns: list[Column], resume: bool, count: str = ""):
        super().__init__(path, columns, resume, count)
        self.handle = open(path, "a" if resume else "w", encoding="utf-8")

    def read_rows(self) -> list[dict[str, Any]]:
        _cut_partial_line(self.path)
        return list(read_jsonl(self.path))

    def keep_only(self, rows: list[dict[str, Any]]) -> None:
        with atomic_path(self.path) as temp:
            temp.write_text("".join(_text(row) + "\n" for row in rows), encoding="utf-8")

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Each row's fields in the columns' order (the order CSV and Parquet have)."""
        self.handle.writelines(_text({k: row[k] for k in self.names if k in row}) + "\n" for row in rows)
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


# ---- Parquet: a part file a batch, merged at the end ----------------------------------------------
class ParquetWriter(Writer):
    """Parquet cannot be appended to: each batch is written whole as a part file in a hidden folder beside the
    output, and the parts (and, resuming, the file before) are merged into the output when the run ends."""

    def __init__(self, path: Path, columns: list[Column], resume: bool, count: str = ""):
        import pyarrow as pa

        self.schema = pa.schema([(c.name, _arrow_type(pa, c.kind)) for c in columns])
        self.parts = path.with_name(f".{path.name}.parts")
        self.nested = {c.name for c in columns if c.kind == "json"}
        self.keep_earlier = resume
        if not resume:
            shutil.rmtree(self.parts, ignore_errors=True)  # a killed earlier run's parts, not wanted now
        self.parts.mkdir(parents=True, exist_ok=True)
        sweep_temp(self.parts)
        super().__init__(path, columns, resume, count)
        self.written = len(list(self.parts.glob("part-*.parquet")))

    def has_earlier(self) -> bool:
        return self.path.exists() or any(self.parts.glob("part-*.parquet"))

    def read_rows(self) -> list[dict[str, Any]]:
        table = self._earlier()
        return table.select(["path", *[c for c in (self.count, "error") if c in table.column_names]]).to_pylist()

    def _earlier(self) -> Any:
        """The output as it stands: the file, then any parts a killed run left."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        earlier = [self.path] if self.keep_earlier and self.path.exists() else []
        files = earlier + sorted(self.parts.glob("part-*.parquet"))
        tables = [pq.read_table(f) for f in files]
        for table in tables:
            self._check_columns(table.column_names)
        return pa.concat_tables([t.cast(self.schema) for t in tables]) if tables else self.schema.empty_table()

    def keep_only(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = self._earlier()
        kept = table.filter(pc.is_in(table.column("path"), value_set=pa_array({r["path"] for r in rows})))
        with atomic_path(self.path, ".parquet") as temp:
            pq.write_table(kept, temp)
        shutil.rmtree(self.parts, ignore_errors=True)
        self.parts.mkdir()
        self.keep_earlier = True

    def write(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if rows:
            encoded = [{k: _text(v) if k in self.nested and v is not None else v for k, v in row.items()}
                       for row in rows]
            with atomic_path(self.parts / f"part-{self.written:06d}.parquet", ".parquet") as temp:
                pq.write_table(pa.Table.from_pylist(encoded, schema=self.schema), temp)
            self.written += 1

    def close(self) -> None:
        """The file before and every part merged into the output, in order; then the parts go."""
        import pyarrow.parquet as pq

        table = self._earlier()
        with atomic_path(self.path, ".parquet") as temp:
            pq.write_table(table, temp)
        shutil.rmtree(self.parts, ignore_errors=True)


def pa_array(values: set[str]) -> Any:
    import pyarrow as pa

    return pa.array(sorted(values), pa.string())


def _arrow_type(pa: Any, kind: str) -> Any:
    return {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "json": pa.string(),
            "vector": pa.list_(pa.float32())}[kind]


def read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


# ---- .npy: embeddings as one array, rows beside it ----------------------------------------------
class NpyWriter(Writer):
    """Face embeddings as an (N, d) float32 array in ``NAME.npy``; the rows in ``NAME.jsonl``, written at the end."""

    def __init__(self, path: Path, columns: list[Column], resume: bool, count: str = ""):
        if "embedding" not in [c.name for c in columns]:
            raise BadInput("only `embed` writes .npy; use .csv, .jsonl or .parquet")
        self.rows: list[dict[str, Any]] = []
        self.vectors: list[np.ndarray] = []
        super().__init__(path, columns, resume, count)

    @property
    def sidecar(self) -> Path:
        return self.path.with_suffix(".jsonl")

    def read_rows(self) -> list[dict[str, Any]]:
        self.rows = list(read_jsonl(self.sidecar)) if self.sidecar.is_file() else []
        self.vectors = list(np.load(self.path)) if self.rows else []
        return self.rows

    def keep_only(self, rows: list[dict[str, Any]]) -> None:
        """Written whole at the end, so nothing on disk is ever cut short: nothing to drop."""

    def write(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            row = dict(row)
            vector = row.pop("embedding", None)
            if vector is not None:
                row["vector"] = len(self.vectors)
                self.vectors.append(np.asarray(vector, np.float32))
            self.rows.append(row)

    def close(self) -> None:
        width = len(self.vectors[0]) if self.vectors else 0
        with atomic_path(self.sidecar) as temp:
            temp.write_text("".join(_text(row) + "\n" for row in self.rows), encoding="utf-8")
        with atomic_path(self.path, ".npy") as temp:
            np.save(temp, np.stack(self.vectors) if self.vectors else np.zeros((0, width), np.float32))


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Every row of an output file as dicts (nested fields still JSON text in CSV and Parquet)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            return [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]
    if suffix == ".parquet":
        return [{k: v for k, v in row.items() if v is not None} for row in read_parquet(path)]
    return list(read_jsonl(path.with_suffix(".jsonl")))


__all__ = ["FORMATS", "Writer", "open_writer", "read_rows"]
