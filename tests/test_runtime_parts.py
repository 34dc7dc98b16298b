"""Rate groups, the profiler and the trajectory metrics."""

from __future__ import annotations

import math

import pytest

from autonomy.runtime.metrics import absolute_trajectory_error, position_errors_m
from autonomy.runtime.profiler import StageProfiler
from autonomy.runtime.rates import RateGroup


def test_rate_group_runs_at_its_rate_inside_a_faster_loop() -> None:
    g = RateGroup("perception", 5.0)
    stamps = [i * 0.05 for i in range(100)]  # 20 Hz for 5 s
    due = [t for t in stamps if g.due(t)]
    assert len(due) == 25
    assert due[:3] == pytest.approx([0.0, 0.2, 0.4])


def test_rate_group_late_tick_does_not_burst() -> None:
    g = RateGroup("planning", 2.0)
    assert g.due(0.0)
    assert not g.due(0.3)
    assert g.due(3.0)  # late: runs once
    assert not g.due(3.1)  # and does not catch up with a burst
    assert g.due(3.5)


def test_rate_group_rejects_bad_rate() -> None:
    with pytest.raises(ValueError, match="rate_hz must be > 0"):
        RateGroup("x", 0.0)


def test_profiler_percentiles_with_injected_timer() -> None:
    t = [0.0]
    prof = StageProfiler(lambda: t[0])
    for i in range(100):
        with prof.stage("a"):
            t[0] += (i + 1) * 1e-3  # 1..100 ms
    s = prof.summary()["a"]
    assert s["count"] == 100
    assert s["p50_ms"] == pytest.approx(50.5)
    assert s["p99_ms"] == pytest.approx(99.01)
    assert s["max_ms"] == pytest.approx(100.0)


def test_ate_and_max() -> None:
    true = [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0)]
    est = [(0.0, 0.1), (1.0, 0.0), (2.0, -0.2)]
    ate, worst = absolute_trajectory_error(true, est)
    assert ate == pytest.approx(math.sqrt((0.01 + 0.04) / 3))
    assert worst == pytest.approx(0.2)
    with pytest.raises(ValueError, match="matched"):
        position_errors_m([(0.0, 0.0)], [(0.0, 0.0), (1.0, 1.0)])
    with pytest.raises(ValueError, match="no samples"):
        absolute_trajectory_error([], [])


def test_position_nees() -> None:
    from autonomy.msgs import Pose2D, PoseEstimate
    from autonomy.runtime.metrics import position_nees

    est = PoseEstimate(0.0, Pose2D(0.2, 0.0, 0.0), ((0.01, 0.0, 0.0), (0.0, 0.04, 0.0), (0.0, 0.0, 0.01)))
    assert position_nees(est, Pose2D(0.0, 0.0, 0.0)) == pytest.approx(4.0)  # (0.2 m)^2 / 0.01 m^2
    assert position_nees(est, Pose2D(0.2, 0.2, 0.0)) == pytest.approx(1.0)  # (0.2 m)^2 / 0.04 m^2


def test_real_time_clock_paces_the_simulated_clock() -> None:
    import time

    from hw.fakes import FakeClock
    from targets.sim_run import RealTimeClock

    sim = FakeClock()
    paced = RealTimeClock(sim, speed=10.0)  # 10x real time: 0.5 s simulated takes about 0.05 s
    t0 = time.perf_counter()
    paced.sleep_until(0.5)
    assert sim.now_s() == 0.5 and paced.now_s() == 0.5
    assert time.perf_counter() - t0 >= 0.045  # it waited for the wall clock (a lower bound, never an upper)
