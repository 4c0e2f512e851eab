"""The S3 backend against a real S3-protocol server (moto's standalone server
on 127.0.0.1, started here): archive, verify, restore, failures."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from b24mw.kit.db import Database
from b24mw.retention.lease import RunLease
from b24mw.retention.restore import restore, verify
from b24mw.retention.storage import S3Storage, StorageError, open_storage
from b24mw.settings import Settings
from tests.retention.helpers import (
    assert_each_row_once,
    manifests,
    old_day,
    retention_settings,
    run,
    seed_history,
    snapshot,
)
from tests.support.net import free_port

CREDENTIALS = {"s3_access_key_id": "testing", "s3_secret_access_key": "testing"}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    name = f"archive-{uuid.uuid4().hex[:12]}"
    _client(s3_endpoint).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
    )
    return name


def _client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="eu-central-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _s3_settings(db: Database, tmp_path: Path, endpoint: str, bucket: str) -> Settings:
    return retention_settings(
        db,
        tmp_path,
        archive_url=f"s3://{bucket}/b24mw/prod",
        s3_endpoint_url=endpoint,
        s3_region="eu-central-1",
        **CREDENTIALS,
    )


async def test_archive_to_s3_verify_and_restore(
    db: Database, tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    await seed_history(db, {old_day(120): 230, old_day(100): 40})
    before = await snapshot(db)
    settings = _s3_settings(db, tmp_path, s3_endpoint, bucket)
    storage = open_storage(settings)
    assert isinstance(storage, S3Storage)

    report = await run(settings, db, tables=["task_events"])  # storage from the settings

    assert report is not None and report.tables[0].rows == 270
    assert await assert_each_row_once(db, storage, before) == (0, 270)
    listed = _client(s3_endpoint).list_objects_v2(Bucket=bucket)["Contents"]
    keys = sorted(item["Key"] for item in listed)
    day = old_day(120)
    assert f"b24mw/prod/task_events/{day:%Y/%m/%d}/part-1.jsonl.gz" in keys
    assert f"b24mw/prod/task_events/{day:%Y/%m/%d}/part-3.manifest.json" in keys
    assert len(keys) == 8  # 3 + 1 parts, each with its manifest
    body = _client(s3_endpoint).get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    assert gzip.decompress(body).count(b"\n") == 100

    checked = await verify(db, storage, table_name="task_events", first_day=None, last_day=None)
    assert checked.ok and checked.checked == 4 and checked.orphans == []
    lease = RunLease(db, "restorer", 60)
    restored = await restore(db, storage, lease, "task_events", day, day)
    assert (restored.restored, restored.skipped, restored.failed) == (230, 0, [])
    current = await snapshot(db)
    assert current == {k: v for k, v in before.items() if k in current} and len(current) == 230


async def test_an_unreachable_bucket_keeps_every_row(db: Database, tmp_path: Path) -> None:
    await seed_history(db, {old_day(120): 50})
    before = await snapshot(db)
    dead_endpoint = f"http://127.0.0.1:{free_port()}"
    settings = _s3_settings(db, tmp_path, dead_endpoint, "nowhere")

    with pytest.raises(StorageError):
        await run(settings, db, tables=["task_events"])

    assert await snapshot(db) == before
    assert await manifests(db) == []


async def test_a_missing_bucket_is_a_storage_error(
    db: Database, tmp_path: Path, s3_endpoint: str
) -> None:
    await seed_history(db, {old_day(120): 5})
    settings = _s3_settings(db, tmp_path, s3_endpoint, "no-such-bucket")

    with pytest.raises(StorageError, match="NoSuchBucket"):
        await run(settings, db, tables=["task_events"])

    assert len(await snapshot(db)) == 5
