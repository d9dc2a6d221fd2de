"""Blobs in an S3 object store (AWS, SeaweedFS, MinIO...), through boto3, with a node-local cache.

A blob is one object, ``<prefix>/<scope>/<kind>/<sha256><suffix>``: content-addressed, so the same bytes are
one object and an object never changes once written. An S3 PUT is whole or nothing (a killed upload leaves no
object; multipart uploads are not used, so there are none half-done to abort), and a key that is already there
is not sent again. Readers that want a path (Keras, Pillow) get a copy in this node's cache, written
atomically and named by the key, so it can never be stale. A store that cannot be reached raises
:class:`~vision_backend.errors.StorageUnavailable` within seconds (short timeouts, two attempts).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

from vision_backend.errors import StorageUnavailable
from vision_backend.storage.files import atomic_write, sweep_temp
from vision_backend.storage.types import Blobs

MISSING = {"404", "NoSuchKey", "NotFound"}
PRESENT = {"412", "PreconditionFailed"}


class ObjectStore:
    """One bucket and key prefix (``s3://bucket/prefix``) and one boto3 client for it (thread-safe, pooled)."""

    def __init__(self, blobs_url: str, endpoint: str | None = None):
        parts = urlsplit(blobs_url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"VISION_LAB_BLOBS must look like s3://bucket/prefix, not {blobs_url!r}")
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        self.endpoint = endpoint or os.environ.get("VISION_LAB_S3_ENDPOINT") or None
        self.client = _client(self.endpoint)

    @property
    def where(self) -> str:
        """The bucket, prefix and endpoint as a person reads them (an endpoint's user and password left out)."""
        at = urlsplit(self.endpoint) if self.endpoint else None
        shown = f" at {at.scheme}://{at.hostname}{f':{at.port}' if at.port else ''}" if at else ""
        return f"s3://{self.bucket}/{self.prefix}{shown}"

    def key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/"))

    @contextlib.contextmanager
    def errors(self, present_ok: bool = False) -> Iterator[None]:
        """The store's failures to answer as :class:`StorageUnavailable`, a missing object as ``FileNotFoundError``;
        with ``present_ok``, "that key is already there" (a conditional PUT's 412) is no failure at all."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as error:
            code = _code(error)
            if present_ok and code in PRESENT:
                return
            if code in MISSING:
                raise FileNotFoundError(f"no such object ({error.operation_name}: {code})") from error
            raise StorageUnavailable(self._unavailable(code)) from error
        except BotoCoreError as error:
            raise StorageUnavailable(self._unavailable("")) from error

    def _unavailable(self, code: str) -> str:
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return (f"The workspace's file store ({self.where}) refused the server's key: check AWS_ACCESS_KEY_ID "
                    "and AWS_SECRET_ACCESS_KEY. Nothing was changed.")
        if code == "NoSuchBucket":
            return f"The workspace's file store has no bucket “{self.bucket}” ({self.where}). Nothing was changed."
        return (f"The workspace's file store ({self.where}) cannot be reached right now; nothing half-done was kept. "
                "Try again in a moment.")

    def list(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix/`` (whole keys), page by page."""
        with self.errors():
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix + "/")
            for page in pages:
                yield from (item["Key"] for item in page.get("Contents", ()))

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete objects, a thousand per request (S3's limit)."""
        keys, deleted = list(keys), 0
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start:start + 1000]]
            with self.errors():
                answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):
                raise StorageUnavailable(self._unavailable(str(answer["Errors"][0].get("Code", ""))))
            deleted += len(batch)
        return deleted


def _client(endpoint: str | None) -> Any:
    """A boto3 client that fails fast: 2 s to connect, two attempts, path-style addressing for a store of one's own
    (no bucket host names); credentials and region from the usual AWS variables."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=2, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"},
                    max_pool_connections=32, tcp_keepalive=True,
                    s3={"addressing_style": "path"} if endpoint else {})
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region, config=config)


def _code(error: BaseException) -> str:
    return str((getattr(error, "response", None) or {}).get("Error", {}).get("Code", ""))


def digest_of(key: str) -> str:
    return Path(key).name[:64]


class S3Blobs(Blobs):
    """One scope's blobs of one kind: objects under ``<prefix>/<scope>/<kind>/``; ``cache`` is this node's folder
    of copies for readers that want a path, ``scratch`` its folder for files on their way in."""

    def __init__(self, store: ObjectStore, where: str, cache: Path, scratch: Path, suffix: str = ""):
        super().__init__(suffix)
        self.store, self.where, self.cache, self.scratch_dir = store, store.key(where), Path(cache), Path(scratch)

    def object(self, key: str) -> str:
        return f"{self.where}/{Path(key).name}"  # a key never leaves its folder

    def put(self, data: bytes) -> str:
        """One PUT, whole or nothing, made only if the key is not there yet (``If-None-Match: *``: the store answers
        412 for a key it holds, so existing bytes are never rewritten and no separate HEAD is needed). A store
        without conditional writes gets a plain PUT: the same bytes again under the same key, harmless."""
        key, target = self.key(data), {"Bucket": self.store.bucket, "Key": self.object(self.key(data)), "Body": data}
        try:
            with self.store.errors(present_ok=True):
                self.store.client.put_object(**target, IfNoneMatch="*")
        except StorageUnavailable as error:
            if _code(error.__cause__) != "NotImplemented":
                raise
            with self.store.errors():
                self.store.client.put_object(**target)
        return key

    def read(self, key: str) -> bytes:
        cached = self.cache / Path(key).name
        if cached.is_file():
            return cached.read_bytes()
        with self.store.errors():
            data = self.store.client.get_object(Bucket=self.store.bucket, Key=self.object(key))["Body"].read()
        if hashlib.sha256(data).hexdigest() != digest_of(key):
            raise StorageUnavailable(f"The file store returned damaged bytes for {key}; nothing was changed. "
                                     "Try again in a moment.")
        return data

    def local(self, key: str) -> Path:
        """This node's copy (fetched once; its name is its content's hash, so it is never stale)."""
        cached = self.cache / Path(key).name
        if not cached.is_file():
            atomic_write(cached, self.read(key))
        return cached

    def keys(self) -> set[str]:
        return {k.rsplit("/", 1)[1] for k in self.store.list(self.where) if "/" not in k[len(self.where) + 1:]}

    def delete(self, key: str) -> None:
        with self.store.errors():
            self.store.client.delete_object(Bucket=self.store.bucket, Key=self.object(key))
        (self.cache / Path(key).name).unlink(missing_ok=True)

    def leftovers(self) -> int:
        """This node's half-written cache copies and scratch files of killed writers (an S3 PUT leaves nothing)."""
        return sum(sweep_temp(folder) for folder in (self.cache, self.scratch_dir) if folder.is_dir())

    def scratch(self) -> Path:
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        return self.scratch_dir

    def sweep(self, referenced: Iterable[str]) -> int:
        """:meth:`Blobs.sweep` with the orphans deleted a thousand per request."""
        removed = self.leftovers()
        orphans = self.keys() - set(referenced)
        self.store.delete_many(self.object(k) for k in orphans)
        for key in orphans:
            (self.cache / Path(key).name).unlink(missing_ok=True)
        return removed + len(orphans)
