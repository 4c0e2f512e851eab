from __future__ import annotations

import pytest

from b24mw.emulator.limits.bucket import LeakyBucket, OperatingTracker

from .conftest import ENVELOPE_TIME_KEYS, EmulatorFactory


def test_bucket_takes_a_burst_then_drains_at_the_rate() -> None:
    bucket = LeakyBucket(rps=2, burst=50)
    assert all(bucket.try_acquire(100.0) for _ in range(50))
    assert not bucket.try_acquire(100.0)
    assert bucket.try_acquire(101.0)
    assert bucket.try_acquire(101.0)
    assert not bucket.try_acquire(101.0)


def test_bucket_with_zero_rate_never_rejects() -> None:
    bucket = LeakyBucket(rps=0, burst=1)
    assert all(bucket.try_acquire(0.0) for _ in range(1000))


def test_bucket_survives_a_clock_going_backwards() -> None:
    bucket = LeakyBucket(rps=1, burst=1)
    assert bucket.try_acquire(10.0)
    assert not bucket.try_acquire(9.0)


def test_operating_time_is_kept_in_one_minute_baskets() -> None:
    tracker = OperatingTracker(limit_s=1.0, window_s=600)
    tracker.add("m", 1000.2, 0.3)  # the basket of minute 16 starts its countdown here
    tracker.add("m", 1019.9, 0.3)  # same minute, same basket
    assert tracker.blocked_until("m", 1020.0) is None
    assert tracker.reset_at("m", 1020.0) == pytest.approx(1600.2)
    tracker.add("m", 1070.5, 0.6)  # minute 17: a basket of its own
    assert tracker.operating("m", 1071.0) == pytest.approx(1.2)
    # Over the limit: blocked until the oldest basket leaves, 10 minutes after
    # its first call (not after the second its time was charged in).
    assert tracker.blocked_until("m", 1071.0) == pytest.approx(1600.2)
    assert tracker.blocked_until("other", 1071.0) is None
    assert tracker.blocked_until("m", 1600.2) is None
    assert tracker.operating("m", 1600.2) == pytest.approx(0.6)
    assert tracker.reset_at("m", 1600.2) == pytest.approx(1670.5)


async def test_fifty_instant_calls_pass_the_fifty_first_is_503(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(rps=2.0, burst=50)
    statuses = [(await emu.call("user.current")).status_code for _ in range(50)]
    assert statuses == [200] * 50
    rejected = await emu.call("user.current")
    assert rejected.status_code == 503
    assert rejected.json()["error"] == "QUERY_LIMIT_EXCEEDED"
    emu.clock.advance(1.0)
    assert (await emu.call("user.current")).status_code == 200
    assert (await emu.call("user.current")).status_code == 200
    assert (await emu.call("user.current")).status_code == 503


async def test_rejected_call_never_runs(make_emulator: EmulatorFactory) -> None:
    emu = await make_emulator(rps=1.0, burst=1)
    await emu.add_task()
    rejected = await emu.call("tasks.task.add", {"fields": {"TITLE": "x", "RESPONSIBLE_ID": 1}})
    assert rejected.status_code == 503
    assert len(emu.portal.store.tasks) == 1


async def test_a_batch_costs_one_request(make_emulator: EmulatorFactory) -> None:
    emu = await make_emulator(rps=1.0, burst=3)
    cmd = {f"k{i}": "user.current" for i in range(20)}
    assert (await emu.call("batch", {"cmd": cmd})).status_code == 200
    assert (await emu.call("user.current")).status_code == 200
    assert (await emu.call("user.current")).status_code == 200
    assert (await emu.call("user.current")).status_code == 503


async def test_operating_limit_gives_429_for_that_method_only(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(operating_limit_s=1.0, operating_cost_s=0.4)
    for _ in range(2):
        assert (await emu.call("user.current")).status_code == 200
    last = await emu.ok("user.current")  # pushes the sum over the limit, and completes
    assert last["time"]["operating_reset_at"] == int(emu.clock.now) + 600
    blocked = await emu.call("user.current")
    assert blocked.status_code == 429
    # The documented body: no time block, so the reset comes from the last success.
    assert blocked.json() == {
        "error": "OPERATION_TIME_LIMIT",
        "error_description": "Method is blocked due to operation time limit.",
    }
    assert (await emu.call("user.get")).status_code == 200
    emu.clock.advance(600)
    assert (await emu.call("user.current")).status_code == 200


async def test_time_block_reports_accumulated_operating(make_emulator: EmulatorFactory) -> None:
    emu = await make_emulator(operating_costs={"user.current": 2.5})
    await emu.ok("user.current")
    second = await emu.ok("user.current")
    time_block = second["time"]
    assert time_block["operating"] == pytest.approx(5.0, abs=0.01)
    assert time_block["operating_reset_at"] == int(emu.clock.now) + 600
    assert set(time_block) == ENVELOPE_TIME_KEYS


async def test_batch_commands_each_count_toward_operating_time(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(operating_limit_s=1.0, operating_costs={"user.current": 0.6})
    cmd = {"a": "user.current", "b": "user.current", "c": "user.current", "d": "user.get"}
    data = await emu.ok("batch", {"cmd": cmd})
    assert set(data["result"]["result"]) == {"a", "b", "d"}
    assert data["result"]["result_error"]["c"]["error"] == "OPERATION_TIME_LIMIT"
    assert (await emu.call("user.current")).status_code == 429


async def test_settings_change_the_limits_at_run_time(make_emulator: EmulatorFactory) -> None:
    emu = await make_emulator(rps=0.0)
    response = await emu.client.post("/_emulator/settings", json={"rps": 1.0, "burst": 2})
    assert response.json()["burst"] == 2.0
    assert (await emu.call("user.current")).status_code == 200
    assert (await emu.call("user.current")).status_code == 200
    assert (await emu.call("user.current")).status_code == 503
    await emu.client.post("/_emulator/reset")
    assert (await emu.call("user.current")).status_code == 200
