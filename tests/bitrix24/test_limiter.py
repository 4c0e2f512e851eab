"""The limiter's arithmetic: quota windows, adaptive decrease and recovery, blocks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from b24mw.bitrix24.limiter import Limiter, LimiterConfig
from tests.support.timing import max_in_window

CONFIG = LimiterConfig(rps=2, rpm=10, burst=2, floor=0.25, margin_s=0.05, pause_s=1.0)


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=40),
    rps=st.sampled_from([0.5, 1.0, 2.0, 5.0]),
    burst=st.integers(1, 5),
    rpm=st.integers(3, 30),
)
def test_granted_slots_never_exceed_either_window(
    gaps: list[float], rps: float, burst: int, rpm: int
) -> None:
    config = LimiterConfig(rps=rps, rpm=rpm, burst=burst, floor=0.1, margin_s=0.05)
    limiter = Limiter.fresh(config, 1000.0)
    now, granted = 1000.0, []
    for gap in gaps:
        now += gap
        at = limiter.earliest(config, now)
        assert at >= now
        limiter.grant(config, at)
        granted.append(at)
    assert granted == sorted(granted)
    assert max_in_window(granted, 1.0) <= config.per_second
    assert max_in_window(granted, 60.0) <= rpm


def test_steady_rate_is_close_to_the_quota() -> None:
    limiter = Limiter.fresh(CONFIG, 0.0)
    config = LimiterConfig(rps=2, rpm=10_000, burst=2, margin_s=0.02)
    slots: list[float] = []
    for _ in range(100):
        at = limiter.earliest(config, slots[-1] if slots else 0.0)
        limiter.grant(config, at)
        slots.append(at)
    rate = (len(slots) - 1) / (slots[-1] - slots[0])
    assert 1.9 < rate <= 2.0


def test_query_limit_halves_once_per_episode_and_pauses() -> None:
    limiter = Limiter.fresh(CONFIG, 0.0)
    limiter.record_query_limit(CONFIG, 10.0)
    limiter.record_query_limit(CONFIG, 10.1)  # same burst of 503s: no second halving
    assert limiter.rate == 1.0
    assert limiter.paused_until >= 11.0
    assert limiter.earliest(CONFIG, 10.2) >= 11.0
    limiter.record_query_limit(CONFIG, 12.0)
    assert limiter.rate == 0.5
    assert limiter.limited_total == 3


def test_rate_never_drops_below_the_floor() -> None:
    limiter = Limiter.fresh(CONFIG, 0.0)
    for i in range(10):
        limiter.record_query_limit(CONFIG, 10.0 * i)
    assert limiter.rate == CONFIG.floor


def test_recovery_is_additive_after_a_run_of_successes() -> None:
    config = LimiterConfig(rps=2, recover_after=5, recover_step=0.25, floor=0.25)
    limiter = Limiter.fresh(config, 0.0)
    limiter.record_query_limit(config, 1.0)
    assert limiter.rate == 1.0
    limiter.record_success(config, 4)
    assert limiter.rate == 1.0
    limiter.record_success(config, 1)
    assert limiter.rate == 1.25
    limiter.record_success(config, 100)
    assert limiter.rate == 2.0


def test_operating_limit_blocks_one_method_until_reset() -> None:
    limiter = Limiter.fresh(CONFIG, 0.0)
    limiter.block("task.commentitem.add", 100.0)
    assert limiter.blocked_at(50.0) == {"task.commentitem.add": 100.0}
    assert limiter.blocked_at(100.0) == {}


def test_pre_emptive_block_near_the_operating_limit() -> None:
    config = LimiterConfig(operating_limit_s=100, operating_soft=0.9)
    limiter = Limiter.fresh(config, 0.0)
    limiter.observe_operating(config, "a", {"operating": 50, "operating_reset_at": 700}, 10.0)
    assert limiter.blocked_at(10.0) == {}
    limiter.observe_operating(config, "a", {"operating": 95, "operating_reset_at": 700}, 10.0)
    assert limiter.blocked_at(10.0) == {"a": 700}


def test_a_429_waits_for_the_reset_the_last_success_named() -> None:
    limiter = Limiter.fresh(CONFIG, 0.0)
    limiter.observe_operating(CONFIG, "a", {"operating": 3, "operating_reset_at": 700}, 10.0)
    limiter.block_after_limit(CONFIG, "a", None, 20.0)
    assert limiter.blocked_at(20.0) == {"a": 701.0}  # the named second waited out


def test_a_429_without_a_known_reset_waits_one_basket() -> None:
    config = LimiterConfig(operating_block_s=60.0)
    limiter = Limiter.fresh(config, 0.0)
    limiter.block_after_limit(config, "a", None, 20.0)  # never seen a success of "a"
    assert limiter.blocked_at(20.0) == {"a": 80.0}
    limiter.observe_operating(config, "b", {"operating": 3, "operating_reset_at": 15}, 10.0)
    limiter.block_after_limit(config, "b", None, 20.0)  # its reset already passed
    assert limiter.blocked_at(20.0)["b"] == 80.0
    limiter.block_after_limit(config, "c", 500.0, 20.0)  # a reset the answer named wins
    assert limiter.blocked_at(20.0)["c"] == 500.0


def test_old_resets_are_forgotten() -> None:
    limiter = Limiter.fresh(CONFIG, 0.0)
    limiter.observe_operating(CONFIG, "a", {"operating": 3, "operating_reset_at": 700}, 10.0)
    limiter.prune(1000.0)
    assert limiter.resets == {"a": 700.0}
    limiter.prune(1400.0)
    assert limiter.resets == {}
