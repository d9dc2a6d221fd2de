"""Rows written as the output file's extension says, and what an earlier run already wrote there.

``.csv`` and ``.jsonl`` are appended to as each batch finishes, so a run that is killed keeps every
row it wrote and ``--resume`` carries on from there (a half-written last line is cut off first).
``.parquet`` is written to a temporary file and put in place when the run ends or is stopped
(Parquet cannot be appended to); ``.npy`` (face embeddings only) writes the vectors as one float32
array and the rows beside it as ``NAME.jsonl``, each with the ``vector`` row it points to. Nested
fields (top-k, landmarks, masks) are JSON text in CSV and Parquet, native in JSON Lines; every row
has ``path``, and a photo that could not be done has ``error`` and nothing else.
"""

from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from vision_backend.batch.tasks import Column
from vision_backend.errors import BadInput
from vision_backend.storage import atomic_path

FORMATS = (".csv", ".jsonl", ".parquet", ".npy")


class Writer:
    """Rows in, a file out; ``done`` is the set of photo paths the file held before this run."""

    def __init__(self, path: Path, columns: list[Column], resume: bool):
        self.path, self.columns = Path(path), columns
        self.names = [c.name for c in columns]
        self.done: set[str] = self.read_done() if resume and self.path.exists() else set()

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


def open_writer(path: str | Path, columns: list[Column], resume: bool = False) -> Writer:
    path = Path(path)
    kinds = {".csv": CsvWriter, ".jsonl": JsonlWriter, ".parquet": ParquetWriter, ".npy": NpyWriter}
    if path.suffix.lower() not in kinds:
        raise BadInput(f"--out must end in {', '.join(FORMATS)}, not {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return kinds[path.suffix.lower()](path, columns, resume)


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
    def __init__(self, path: Path, columns: list[Column], resume: bool):
        super().__init__(path, columns, resume)
        fresh = not (resume and path.exists() and path.stat().st_size)
        self.handle = open(path, "w" if fresh else "a", newline="", encoding="utf-8")
        self.rows = csv.DictWriter(self.handle, self.names, extrasaction="ignore")
        if fresh:
            self.rows.writeheader()
        self.nested = {c.name for c in columns if c.kind in ("json", "vector")}

    def read_done(self) -> set[str]:
        _cut_partial_line(self.path)
        with open(self.path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None:
                return set()
            self._check_columns(list(reader.fieldnames))
            return {row["path"] for row in reader}

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.rows.writerows({k: _text(v) if k in self.nested and v is not None else v for k, v in row.items()}
                            for row in rows)
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


class JsonlWriter(Writer):
    def __init__(self, path: Path, columns: list[Column], resume: bool):
        super().__init__(path, columns, resume)
        self.handle = open(path, "a" if resume else "w", encoding="utf-8")

    def read_done(self) -> set[str]:
        _cut_partial_line(self.path)
        return {row["path"] for row in read_jsonl(self.path)}

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


# ---- Parquet: a temporary file put in place at the end ------------------------------------------
class ParquetWriter(Writer):
    def __init__(self, path: Path, columns: list[Column], resume: bool):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.schema = pa.schema([(c.name, _arrow_type(pa, c.kind)) for c in columns])
        self.earlier = None
        super().__init__(path, columns, resume)
        self.finishing = contextlib.ExitStack()
        temp = self.finishing.enter_context(atomic_path(path, ".parquet"))
        self.writer = pq.ParquetWriter(temp, self.schema)
        if self.earlier is not None:
            self.writer.write_table(self.earlier)
        self.nested = {c.name for c in columns if c.kind == "json"}

    def read_done(self) -> set[str]:
        import pyarrow.parquet as pq

        self.earlier = pq.read_table(self.path)
        self._check_columns(self.earlier.column_names)
        self.earlier = self.earlier.cast(self.schema)
        return set(self.earlier.column("path").to_pylist())

    def write(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        if rows:
            encoded = [{k: _text(v) if k in self.nested and v is not None else v for k, v in row.items()}
                       for row in rows]
            self.writer.write_table(pa.Table.from_pylist(encoded, schema=self.schema))

    def close(self) -> None:
        self.writer.close()
        self.finishing.close()  # renames the finished file into place


def _arrow_type(pa: Any, kind: str) -> Any:
    return {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "json": pa.string(),
            "vector": pa.list_(pa.float32())}[kind]


def read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


# ---- .npy: embeddings as one array, rows beside it ----------------------------------------------
class NpyWriter(Writer):
    """Face embeddings as an (N, d) float32 array in ``NAME.npy``; the rows in ``NAME.jsonl``, written at the end."""

    def __init__(self, path: Path, columns: list[Column], resume: bool):
        if "embedding" not in [c.name for c in columns]:
            raise BadInput("only `embed` writes .npy; use .csv, .jsonl or .parquet")
        self.rows: list[dict[str, Any]] = []
        self.vectors: list[np.ndarray] = []
        super().__init__(path, columns, resume)

    @property
    def sidecar(self) -> Path:
        return self.path.with_suffix(".jsonl")

    def read_done(self) -> set[str]:
        self.rows = list(read_jsonl(self.sidecar)) if self.sidecar.is_file() else []
        self.vectors = list(np.load(self.path)) if self.rows else []
        return {row["path"] for row in self.rows}

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
