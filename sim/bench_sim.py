"""``rover bench sim``: simulation speed. Physics alone (one rover, no camera), with the default sensor set
(the rover loop's 20 Hz port reads and the 5 Hz 640x480 camera), and the soil model's operations."""

from __future__ import annotations

from time import perf_counter
from typing import Any

import numpy as np

from autonomy.msgs import DriveCommand, Pose2D, ToolCommand
from sim.backend import SimSensorProfile
from sim.regolith import Bucket, bench_soil_ops
from sim.sites import make_site, preset
from sim.world import World

CONTROL_HZ = 20.0


def _run(profile: SimSensorProfile, sim_seconds: float, read_ports: bool) -> dict[str, float]:
    with World(1, (), site=make_site(preset("ucf"), 1)) as world:
        rover = world.add_rover("r1", Pose2D(1.2, 1.0, 0.0), profile)
        io = rover.io()
        dt = 1.0 / CONTROL_HZ
        t0 = perf_counter()
        steps0 = world.steps
        while world.time_s < sim_seconds:
            rover.drive.command(DriveCommand(world.time_s, 0.2, 0.1))
            if read_ports:
                io.read()
            world.run_for(dt)
        wall = perf_counter() - t0
        steps = world.steps - steps0
    return {
        "steps_per_s": steps / wall,
        "x_real_time": world.time_s / wall,
        "wall_s": wall,
    }


def _terrain_update_ms(repeats: int) -> float:
    with World(1, (), site=make_site(preset("ucf"), 1)) as world:
        bucket = Bucket(1.0)
        for k in range(repeats):
            world.dig(1.0 + 0.02 * k, 3.4, 0.15, 0.02, bucket)
        return float(np.median(world.terrain_update_ms))


def _digging_x_real_time(sim_seconds: float) -> float:
    """A rover ploughing the excavation zone with its bucket lowered (soil model at 20 Hz, no camera)."""
    with World(1, (), site=make_site(preset("ucf"), 1)) as world:
        rover = world.add_rover(
            "r1", Pose2D(0.9, 3.45, 0.0), SimSensorProfile(camera_enabled=False, bucket_capacity_m3=1.0)
        )
        t0 = perf_counter()
        while world.time_s < sim_seconds:
            rover.drive.command(DriveCommand(world.time_s, 0.1, 0.0))
            rover.tool.command(ToolCommand(world.time_s, 0.8))
            world.run_for(1.0 / CONTROL_HZ)
        return world.time_s / (perf_counter() - t0)


def run_sim_bench(sim_seconds: float = 10.0, soil_repeats: int = 30) -> dict[str, Any]:
    """Measured figures (one run each; medians inside the soil and terrain figures)."""
    physics = _run(SimSensorProfile(camera_enabled=False), sim_seconds, read_ports=False)
    sensors = _run(SimSensorProfile(), sim_seconds, read_ports=True)
    sensors_qvga = _run(SimSensorProfile(camera_width_px=320, camera_height_px=240), sim_seconds, read_ports=True)
    soil = bench_soil_ops(repeats=soil_repeats)
    return {
        "physics_only": physics,
        "default_sensors": sensors,
        "sensors_camera_320x240": sensors_qvga,
        "digging_x_real_time": _digging_x_real_time(sim_seconds / 2),
        "soil_ops_ms": soil,
        "terrain_update_ms": _terrain_update_ms(soil_repeats),
        "targets": {"physics_x_real_time": 20.0, "sensors_x_real_time": 5.0, "soil_op_ms": 2.0},
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run_sim_bench(), indent=2))
