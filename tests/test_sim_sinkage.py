"""Wheel sinkage in soft regolith (sim/sinkage.py): Bekker's law by hand, and its effect on a driving rover."""

from __future__ import annotations

import math

import pytest

from autonomy.msgs import DriveCommand, Pose2D
from sim.sinkage import LOOSE_REGOLITH, LUNAR_REGOLITH, SoilBearing, resistance_force, wheel_sinkage


def test_bekker_sinkage_by_hand() -> None:
    soil = SoilBearing("test", k_c=1000.0, k_phi=100_000.0, n=1.0)
    # W = 30 N, b = 0.1 m, D = 0.25 m: k_c + b k_phi = 11 000; z0 = (3 * 30 / (2 * 11 000 * 0.5))^(2/3)
    z0, rc = wheel_sinkage(30.0, 0.1, 0.25, soil)
    expected_z = (90.0 / 11_000.0) ** (2.0 / 3.0)
    assert z0 == pytest.approx(expected_z, rel=1e-12)
    assert rc == pytest.approx(11_000.0 * expected_z**2 / 2.0, rel=1e-12)
    assert wheel_sinkage(0.0, 0.1, 0.25, soil) == (0.0, 0.0)


def test_sinkage_grows_with_load_and_softness() -> None:
    light = wheel_sinkage(20.0, 0.08, 0.3, LUNAR_REGOLITH)
    heavy = wheel_sinkage(40.0, 0.08, 0.3, LUNAR_REGOLITH)
    loose = wheel_sinkage(20.0, 0.08, 0.3, LOOSE_REGOLITH)
    assert heavy[0] > light[0] and heavy[1] > light[1]
    assert loose[0] > 3 * light[0] and loose[1] > light[1]
    assert 0.005 < light[0] < 0.02  # about a centimetre under a 63 kg rover at 1/6 g


def test_resistance_opposes_motion_and_fades_at_rest() -> None:
    fx, fy = resistance_force(5.0, 0.3, 0.0)
    assert (fx, fy) == pytest.approx((-5.0, 0.0))
    fx, fy = resistance_force(5.0, 0.0, 0.01)  # half the fade speed: half the force
    assert (fx, fy) == pytest.approx((0.0, -2.5))
    assert resistance_force(5.0, 0.0, 0.0) == (0.0, 0.0)


def test_invalid_soil_and_wheel_raise() -> None:
    with pytest.raises(ValueError, match="n must be"):
        SoilBearing("bad", 1.0, 1.0, n=3.0)
    with pytest.raises(ValueError, match="width"):
        wheel_sinkage(10.0, 0.0, 0.3, LUNAR_REGOLITH)


def test_same_command_costs_more_energy_on_soft_soil() -> None:
    """The same 4 s drive on firm ground and on loose regolith: on loose regolith the rover uses clearly more
    energy (the motors push against the compaction resistance) and slips more: it gets less far."""
    pytest.importorskip("pybullet")
    from sim.backend import SimSensorProfile
    from sim.world import World

    results = {}
    for name, bearing in (("firm", None), ("loose", LOOSE_REGOLITH)):
        with World(4, (), keep_clear_xy=[(0.0, 0.0), (3.0, 0.0)], size_m=(8.0, 6.0), bearing=bearing) as w:
            r = w.add_rover("r1", Pose2D(0.0, 0.0, 0.0), SimSensorProfile(camera_enabled=False))
            w.run_for(0.5)  # settle
            e0, p0 = r.energy_used_wh, r.true_pose()
            for _ in range(80):
                r.drive.command(DriveCommand(w.time_s, 0.3, 0.0))
                w.run_for(0.05)
            p1 = r.true_pose()
            drive_wh = r.energy_used_wh - e0 - r.profile.hotel_power_w * 4.0 / 3600.0
            results[name] = (drive_wh, math.hypot(p1.x_m - p0.x_m, p1.y_m - p0.y_m), r.wheel_sinkage())
    firm, loose = results["firm"], results["loose"]
    assert firm[2] == (0.0, 0.0) and loose[2][0] > 0.03
    assert loose[0] > 1.5 * firm[0], (firm, loose)
    assert loose[1] < firm[1] - 0.01  # measured: 1.143 m vs 1.168 m for the same wheel turns
