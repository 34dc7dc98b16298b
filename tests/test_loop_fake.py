"""The rover loop and pipeline against the fake backend: lockstep timing, the safety stage, max_steps."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from autonomy.msgs import Commands, DriveCommand, Pose2D, RunStatus, SensorFrame, Waypoint
from autonomy.runtime.loop import RoverLoop
from autonomy.runtime.pipeline import Pipeline, PipelineConfig, RoverGeometry
from autonomy.runtime.profiler import StageProfiler
from hw.fakes import FakeClock, FakeRover, fake_rover_io
from hw.rover_io import RoverIO

SQUARE = (Waypoint(2.0, 0.0), Waypoint(2.0, 2.0), Waypoint(0.0, 2.0), Waypoint(0.0, 0.0))


def _setup(waypoints: tuple[Waypoint, ...] = SQUARE) -> tuple[FakeRover, RoverIO, Pipeline]:
    clock = FakeClock()
    rover = FakeRover("r7", clock, Pose2D(0.0, 0.0, 0.0))
    io = fake_rover_io(rover)
    config = PipelineConfig(
        rover_id="r7",
        geometry=RoverGeometry(rover.wheel_radius_m, rover.track_width_m),
        start=Pose2D(0.0, 0.0, 0.0),
        landmarks=(),
        waypoints=waypoints,
    )
    fake_timer = iter(range(10**9))
    return rover, io, Pipeline(config, StageProfiler(lambda: float(next(fake_timer))))


def test_fake_rover_drives_the_square_on_odometry() -> None:
    rover, io, pipeline = _setup()
    result = RoverLoop(io, io.clock, pipeline, control_hz=20.0, time_limit_s=120.0).run()
    assert result.status is RunStatus.COMPLETED
    assert rover.pose.distance_to_m(0.0, 0.0) < 0.25
    assert pipeline.report is not None
    assert pipeline.report.estimate.pose.distance_to_m(rover.pose.x_m, rover.pose.y_m) < 0.02
    # lockstep: the clock advanced exactly one control period per tick
    assert result.sim_seconds == pytest.approx((result.steps - 1) * 0.05, abs=1e-6)
    assert set(pipeline.profiler.summary()) >= {"step", "perceive", "estimate", "decide", "navigate", "limit"}


def test_max_steps_and_time_limit() -> None:
    _, io, pipeline = _setup()
    r = RoverLoop(io, io.clock, pipeline, control_hz=20.0, max_steps=7).run()
    assert r.steps == 7 and r.status is RunStatus.RUNNING and "max_steps" in r.reason
    _, io, pipeline = _setup()
    r = RoverLoop(io, io.clock, pipeline, control_hz=20.0, time_limit_s=2.0).run()
    assert r.status is RunStatus.TIMEOUT


def _run_with(io: RoverIO, pipeline: Pipeline, steps: int, tweak: Callable[[int], None]) -> list[tuple[Commands, str]]:
    out: list[tuple[Commands, str]] = []

    def observe(frame: SensorFrame, cmds: Commands) -> None:
        assert pipeline.report is not None
        out.append((cmds, pipeline.report.stop_reason))
        tweak(len(out))

    RoverLoop(io, io.clock, pipeline, control_hz=20.0, max_steps=steps, observer=observe).run()
    return out


def test_estop_stops_the_rover() -> None:
    rover, io, pipeline = _setup()

    def tweak(n: int) -> None:
        rover.estop_engaged = n >= 20

    out = _run_with(io, pipeline, 40, tweak)
    assert out[15][0].drive.linear_x_mps > 0.0
    assert all(c.drive == DriveCommand.stop(c.drive.stamp_s) and r == "estop" for c, r in out[21:])


def test_stale_encoders_stop_the_rover() -> None:
    _rover, io, pipeline = _setup()
    real_read = io.wheels.read
    dead = {"on": False}

    class DeadAfter:
        def read(self) -> object:
            return None if dead["on"] else real_read()

    io.wheels = DeadAfter()  # type: ignore[assignment]

    def tweak(n: int) -> None:
        dead["on"] = n >= 20

    out = _run_with(io, pipeline, 60, tweak)
    assert out[25][0].drive.linear_x_mps > 0.0  # within the 0.5 s grace
    assert all(r == "stale wheel encoders" and c.drive.linear_x_mps == 0.0 for c, r in out[35:])


def test_frame_of_another_rover_is_refused() -> None:
    _, io, pipeline = _setup()
    frame = io.read()
    other = SensorFrame("someone-else", frame.stamp_s, frame.wheels, frame.imu)
    with pytest.raises(ValueError, match="someone-else"):
        pipeline.step(other)


def test_lost_estimate_stops_the_rover_and_is_reported() -> None:
    """The LandmarkEkf's lost flag (start covariance past its bound, no tag to relocalize) reaches the
    TickReport, and the limit stage stops the rover."""
    clock = FakeClock()
    rover = FakeRover("r7", clock, Pose2D(0.0, 0.0, 0.0))
    io = fake_rover_io(rover)
    config = PipelineConfig(
        rover_id="r7",
        geometry=RoverGeometry(rover.wheel_radius_m, rover.track_width_m),
        start=Pose2D(0.0, 0.0, 0.0),
        landmarks=(),
        waypoints=SQUARE,
        start_sigma_m=1.5,
    )
    pipeline = Pipeline(config)
    reports: list[tuple[bool, str, float]] = []

    def observe(frame: SensorFrame, cmds: Commands) -> None:
        assert pipeline.report is not None
        reports.append((pipeline.report.lost, pipeline.report.stop_reason, cmds.drive.linear_x_mps))

    RoverLoop(io, io.clock, pipeline, control_hz=20.0, max_steps=20, observer=observe).run()
    assert all(lost and reason == "localization lost" and v == 0.0 for lost, reason, v in reports[2:])
    assert set(Pipeline.STAGES) >= {"map"}


def test_planned_mode_takes_waypoints_without_headings() -> None:
    """A planned-navigation mission whose waypoints carry no ``yaw_rad`` builds its navigator with heading-free
    goals (it used to build NaN-yaw poses, which the message contract rejects)."""
    config = PipelineConfig(
        rover_id="r1",
        geometry=RoverGeometry(0.15, 0.6),
        start=Pose2D(0.0, 0.0, 0.0),
        landmarks=(),
        waypoints=SQUARE,
        navigation="planned",
    )
    pipeline = Pipeline(config)
    assert pipeline.navigator is not None and len(pipeline.navigator.goals) == len(SQUARE)
