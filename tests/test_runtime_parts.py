"""Rate groups, the profiler and the trajectory metrics."""

from __future__ import annotations

import math

import numpy as np
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


def test_terrain_model_marks_a_step_lethal_and_keeps_flat_ground_free() -> None:
    """Elevation layers -> costmap: a 30 cm block on flat ground is lethal (step), its surroundings inflated,
    far flat ground free, the outside of the site lethal (walls)."""
    import numpy as np

    from autonomy.mission.site_zones import Box
    from autonomy.msgs import Pose2D
    from autonomy.navigation.costmap import INSCRIBED, LETHAL
    from autonomy.runtime.terrain import TerrainModel, TerrainParams

    site = Box(0.0, 0.0, 4.0, 3.0)
    t = TerrainModel(TerrainParams(), Pose2D(0.5, 1.5, 0.0), 0.0, site)
    xx, yy = t.map.cell_centres()
    z = np.where((np.abs(xx - 2.5) < 0.15) & (np.abs(yy - 1.5) < 0.15), 0.3, 0.0)
    inside = (xx > 0.0) & (xx < 4.0) & (yy > 0.0) & (yy < 3.0)
    pts = np.column_stack([xx[inside], yy[inside], z[inside]])
    for _ in range(3):
        t.map.fuse_points(pts, (xx[inside].mean(), yy[inside].mean(), 2.0))
    cm = t.costmap()
    assert cm.cost_at(2.5 + 0.15, 1.5) == LETHAL  # the block's edge: a 30 cm step
    assert cm.cost_at(2.5, 1.5) >= INSCRIBED  # its flat top: inside the inflated edge
    assert cm.cost_at(2.5, 1.5 + 0.3) >= INSCRIBED  # within the rover's inscribed radius of the block
    assert cm.cost_at(1.0, 1.5) < INSCRIBED  # flat ground 1.5 m away
    assert cm.cost_at(-0.2, 1.5) == LETHAL  # outside the site


def test_planned_navigator_reaches_a_goal_pose_on_a_fake_rover() -> None:
    """The planned mode end to end on the fake backend (no depth: an unknown, graded map): it arrives at the
    goal pose within the follower's tolerances."""
    from autonomy.mission.site_zones import Box
    from autonomy.msgs import Pose2D, RunStatus, Waypoint
    from autonomy.runtime.loop import RoverLoop
    from autonomy.runtime.pipeline import Pipeline, PipelineConfig, RoverGeometry
    from hw.fakes import FakeClock, FakeRover, fake_rover_io

    clock = FakeClock()
    rover = FakeRover("r1", clock, Pose2D(1.0, 1.0, 0.0))
    io = fake_rover_io(rover)
    config = PipelineConfig(
        rover_id="r1",
        geometry=RoverGeometry(rover.wheel_radius_m, rover.track_width_m),
        start=Pose2D(1.0, 1.0, 0.0),
        landmarks=(),
        waypoints=(Waypoint(3.0, 2.0, 0.05),),
        navigation="planned",
        waypoint_yaws_rad=(math.pi / 2,),
        site_box=Box(0.0, 0.0, 5.0, 4.0),
    )
    pipeline = Pipeline(config)
    result = RoverLoop(io, io.clock, pipeline, control_hz=20.0, time_limit_s=60.0).run()
    assert result.status is RunStatus.COMPLETED
    assert rover.pose.distance_to_m(3.0, 2.0) < 0.05
    assert abs(math.remainder(rover.pose.yaw_rad - math.pi / 2, math.tau)) < math.radians(3.0)
    assert pipeline.navigator is not None and pipeline.navigator.plans >= 1


def test_the_turn_pivot_follows_the_payload_not_a_bump() -> None:
    """``Pipeline.turn_pivot_x_m``: the median of the last tool loads through ``RoverGeometry.turn_pivot``; a
    one-tick spike of an empty bucket (a bump) moves nothing, a payload does (capped at the front axle)."""
    from autonomy.estimation.odometry import TurnPivot
    from autonomy.msgs import Pose2D, SensorFrame, ToolState
    from autonomy.runtime.pipeline import TOOL_LOAD_WINDOW, Pipeline, PipelineConfig, RoverGeometry

    geometry = RoverGeometry(0.15, 0.6, TurnPivot(0.01, 0.24, min_load_n=2.0))
    pipeline = Pipeline(PipelineConfig("r1", geometry, Pose2D(0.0, 0.0, 0.0), (), ()))
    assert pipeline.turn_pivot_x_m == 0.0  # no tool reading yet

    def tick(k: int, load_n: float) -> None:
        t = 0.05 * k
        pipeline.estimate(SensorFrame("r1", t, None, None, tool=ToolState(t, 0.0, load_n)), ())

    for k in range(TOOL_LOAD_WINDOW):
        tick(k, 15.0 if k == 5 else 1.5)
    assert pipeline.turn_pivot_x_m == 0.0  # an empty bucket's load reading (below min_load_n) and one bump
    for k in range(TOOL_LOAD_WINDOW, 3 * TOOL_LOAD_WINDOW):
        tick(k, 12.0)
    assert pipeline.turn_pivot_x_m == pytest.approx(0.12)
    for k in range(3 * TOOL_LOAD_WINDOW, 5 * TOOL_LOAD_WINDOW):
        tick(k, 36.0)
    assert pipeline.turn_pivot_x_m == pytest.approx(0.24)
    with pytest.raises(ValueError, match=r"TurnPivot\.max_m"):
        TurnPivot(0.01, -0.1)


def test_depth_is_fused_with_the_imu_tilt_and_not_at_all_from_a_tipping_rover() -> None:
    """``Pipeline.map_depth``: the tilt filter's roll and pitch go to the terrain model (the flat floor seen
    from a rover pitched 8 deg stays at z = 0 in the map); past ``max_map_tilt_rad`` the frame is not fused."""
    from test_perception_hazards import ray_cast_depth
    from test_tilt import gravity_reaction

    from autonomy.msgs import ImuReading, Pose2D, SensorFrame
    from autonomy.runtime.pipeline import Pipeline, PipelineConfig, RoverGeometry

    def fused(pitch: float) -> tuple[Pipeline, int]:
        pipeline = Pipeline(PipelineConfig("r1", RoverGeometry(0.1, 0.5), Pose2D(1.0, 2.0, 0.0), (), ()))
        imu = ImuReading(0.0, (0.0, 0.0, 0.0), gravity_reaction(0.0, pitch))
        depth = ray_cast_depth([], [], body_tilt=(0.0, pitch))
        frame = SensorFrame("r1", 0.0, None, imu, depth=depth)
        estimate, _ = pipeline.estimate(frame, ())
        return pipeline, pipeline.map_depth(frame, estimate)

    pipeline, used = fused(math.radians(8.0))
    assert used > 0 and pipeline.frames_too_tilted == 0
    assert pipeline.terrain is not None
    h = pipeline.terrain.map.heights_m
    assert np.nanmax(np.abs(h)) < 0.01
    pipeline, used = fused(math.radians(40.0))
    assert used == 0 and pipeline.frames_too_tilted == 1
    with pytest.raises(ValueError, match="max_map_tilt_rad"):
        PipelineConfig("r1", RoverGeometry(0.1, 0.5), Pose2D(0.0, 0.0, 0.0), (), (), max_map_tilt_rad=2.0)


def test_walls_are_fitted_with_the_imu_tilt() -> None:
    """``Pipeline.estimate``: the wall detector gets the tilt filter's roll and pitch, as the map does. A rover
    pitched 8 deg nose down 4 m from a known wall keeps its position with them; fitted as if level, the floor
    ahead reads as wall and the wall 7 cm nearer, and the update pulls the estimate off."""
    from dataclasses import replace

    from test_tilt import gravity_reaction
    from test_walls import _wall_depth

    from autonomy.msgs import ImuReading, Pose2D, SensorFrame, WallLine, WheelEncoderReading
    from autonomy.runtime.pipeline import Pipeline, PipelineConfig, RoverGeometry

    pitch = math.radians(8.0)

    def after_one_frame(tilt_depth: bool) -> tuple[Pipeline, float]:
        walls = (WallLine(0, 0.0, 5.0),)  # x = 5 m; the rover stands at x = 1 m facing it
        cfg = PipelineConfig(
            "r1", RoverGeometry(0.1, 0.5), Pose2D(1.0, 2.0, 0.0), (), (), walls=walls, tilt_depth=tilt_depth
        )
        pipeline = Pipeline(cfg)
        depth = _wall_depth(4.0, 0.0, wall_height_m=1.2, body_tilt=(0.0, pitch))
        for k in range(3):  # standing still: the odometry's first readings start the filter's clock
            t = 0.05 * k
            imu = ImuReading(t, (0.0, 0.0, 0.0), gravity_reaction(0.0, pitch))
            wheels = WheelEncoderReading(t, 0.0, 0.0, 0.0, 0.0)
            frame = SensorFrame("r1", t, wheels, imu, depth=replace(depth, stamp_s=t) if k == 2 else None)
            estimate, _ = pipeline.estimate(frame, ())
        return pipeline, estimate.pose.x_m

    pipeline, x = after_one_frame(True)
    assert pipeline.walls_seen == 1 and pipeline.landmark_ekf.wall_accepted_count == 1
    assert x == pytest.approx(1.0, abs=0.005)
    pipeline, x = after_one_frame(False)
    assert pipeline.walls_seen == 2  # the wall and the floor 3.3 m ahead
    assert x - 1.0 > 0.02


def test_the_tipping_guard_stops_a_drive_that_keeps_tipping_the_rover_and_lets_it_back_out() -> None:
    """``Pipeline.limit``: backing down into a pit, the pitch rises from 10 to 26 deg. Past 20 deg and rising, a
    command that keeps the rover backing (or turning in place) is stopped; driving forward, out the way it came,
    passes; once the tilt stops rising, the guard lets go. Off with ``tip_guard_rad=None``."""
    from dataclasses import replace

    from test_tilt import gravity_reaction

    from autonomy.msgs import DriveCommand, ImuReading, Pose2D, PoseEstimate, SensorFrame, WheelEncoderReading
    from autonomy.runtime.pipeline import Pipeline, PipelineConfig, RoverGeometry

    class Rover:
        """Wheel and IMU readings at 20 Hz of a rover backing at ``speed_mps`` through the given pitches."""

        def __init__(self, pipeline: Pipeline) -> None:
            self.pipeline, self.k, self.wheel_rad, self.pitch_deg = pipeline, 0, 0.0, 10.0

        def drive(self, pitches_deg: list[float], speed_mps: float) -> tuple[float, PoseEstimate]:
            for p in pitches_deg:
                t = 0.05 * self.k
                rate = math.radians(p - self.pitch_deg) / 0.05
                self.k, self.pitch_deg = self.k + 1, p
                self.wheel_rad += speed_mps * 0.05 / 0.1  # wheel radius 0.1 m
                w = self.wheel_rad
                imu = ImuReading(t, (0.0, rate, 0.0), gravity_reaction(0.0, math.radians(p)))
                est, _ = self.pipeline.estimate(SensorFrame("r1", t, WheelEncoderReading(t, w, w, w, w), imu), ())
            return t, est

        def limit(self, t: float, est: PoseEstimate, v: float, w: float) -> tuple[DriveCommand, str]:
            return self.pipeline.limit(SensorFrame("r1", t, None, None), DriveCommand(t, v, w), est)

    rising = [10.0] * 20 + [10.0 + 1.6 * k for k in range(1, 11)]  # 1 s at 10 deg, then +16 deg in 0.5 s
    cfg = PipelineConfig("r1", RoverGeometry(0.1, 0.5), Pose2D(0.0, 0.0, 0.0), (), ())
    rover = Rover(Pipeline(cfg))
    t, est = rover.drive(rising, -0.2)
    assert math.degrees(rover.pipeline.tilt_magnitude_rad) == pytest.approx(26.0, abs=1.0)
    assert rover.limit(t, est, -0.2, 0.0) == (DriveCommand.stop(t), "tipping")
    assert rover.limit(t, est, 0.0, 0.4)[1] == "tipping"
    out, reason = rover.limit(t, est, 0.15, 0.0)
    assert reason == "" and out.linear_x_mps == pytest.approx(0.15)
    t, est = rover.drive([26.0] * 30, 0.0)  # standing there, no longer tipping further: the guard lets go
    assert rover.limit(t, est, -0.2, 0.0)[1] == ""
    off = Rover(Pipeline(replace(cfg, tip_guard_rad=None)))
    t, est = off.drive(rising, -0.2)
    assert off.limit(t, est, -0.2, 0.0)[1] == ""
    with pytest.raises(ValueError, match="tip_guard_rad"):
        replace(cfg, tip_guard_rad=2.0)
