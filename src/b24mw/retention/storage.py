"""Where archive parts go: a local directory or an S3-compatible bucket.

``B24MW_ARCHIVE_URL`` is ``file://<dir>`` (relative paths are taken from the
working directory) or ``s3://<bucket>/<prefix>``.  Keys handed to a storage
are relative (``task_events/2026/01/31/part-1.jsonl.gz``); the storage puts
them under its directory or prefix.  Every failure is a ``StorageError``, so
the run treats a full disk and an unreachable bucket alike: the part is not
verified, its rows stay.

boto3 is synchronous: its calls run in a thread so the worker's event loop
(outbox, inbox) keeps turning while a part uploads.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from b24mw.settings import Settings


class StorageError(Exception):
    """The archive storage refused or failed an operation."""


class ArchiveStorage(Protocol):
    url: str

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def list(self, prefix: str) -> list[str]: ...


class LocalStorage:
    """A directory.  A part is written to a temporary name, flushed to disk
    and renamed, so a reader never sees half an object."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"file://{root}"

    def _put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with tmp.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.exists():
            return []
        keys = [
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        ]
        return sorted(keys)

    async def put(self, key: str, data: bytes) -> None:
        try:
            await asyncio.to_thread(self._put, key, data)
        except OSError as exc:
            raise StorageError(f"{self.url}/{key}: {exc}") from exc

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread((self.root / key).read_bytes)
        except OSError as exc:
            raise StorageError(f"{self.url}/{key}: {exc}") from exc

    async def list(self, prefix: str) -> list[str]:
        try:
            return await asyncio.to_thread(self._list, prefix)
        except OSError as exc:
            raise StorageError(f"{self.url}/{prefix}: {exc}") from exc


class S3Storage:
    """An S3-compatible bucket through boto3 (AWS, MinIO, Ceph, moto...)."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    async def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(fn, **kwargs)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise StorageError(f"{self.url}: {what}: {exc}") from exc

    async def put(self, key: str, data: bytes) -> None:
        await self._call(
            f"put {key}", self.client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data
        )

    async def get(self, key: str) -> bytes:
        def read() -> bytes:
            reply = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            body: bytes = reply["Body"].read()
            return body

        result: bytes = await self._call(f"get {key}", read)
        return result

    async def list(self, prefix: str) -> list[str]:
        def keys() -> list[str]:
            found: list[str] = []
            paginator = self.client.get_paginator("list_objects_v2")
            strip = len(self.prefix) + 1 if self.prefix else 0
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                found.extend(item["Key"][strip:] for item in page.get("Contents", []))
            return sorted(found)

        result: list[str] = await self._call(f"list {prefix}", keys)
        return result


class ArchiveUrlError(ValueError):
    """``B24MW_ARCHIVE_URL`` names no storage we can use."""


def open_storage(settings: Settings) -> ArchiveStorage:
    url = settings.archive_url.strip()
    if url.startswith("file://"):
        path = url.removeprefix("file://")
        if not path:
            raise ArchiveUrlError("B24MW_ARCHIVE_URL: file:// needs a directory")
        return LocalStorage(Path(path))
    if url.startswith("s3://"):
        parts = urlsplit(url)
        if not parts.netloc:
            raise ArchiveUrlError("B24MW_ARCHIVE_URL: s3:// needs a bucket, s3://bucket/prefix")
        return S3Storage(parts.netloc, parts.path, _s3_client(settings))
    raise ArchiveUrlError("B24MW_ARCHIVE_URL: must be file://<dir> or s3://<bucket>/<prefix>")


def _s3_client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    secret = settings.s3_secret_access_key
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10),
    )
