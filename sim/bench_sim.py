"""``rover bench sim``: simulation speed. Physics alone (one rover, no camera), with the default sensor set
(the rover loop's 20 Hz port reads, the 3 Hz 640x480 RGB camera and the 160x120 depth image sampled from the
camera's render), camera variants side by side, the depth image's three ways (sampled from the camera
render, its own 160x120 render, ``rayTestBatch`` over the same rays), the cast-shadow shading of a frame and
the soil model's operations.

Provisional on a shared machine: compare the ratios measured in one run, not absolute times."""

from __future__ import annotations

from time import perf_counter
from typing import Any

import numpy as np

from autonomy.msgs import DriveCommand, Pose2D, ToolCommand
from sim.backend import (
    SimSensorProfile,
    _CameraRig,
    _DepthRig,
    _tiny_render,
    gl_projection_matrix,
    gl_view_matrix,
)
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


def _p50_ms(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = perf_counter()
        fn()
        times.append((perf_counter() - t0) * 1e3)
    return float(np.median(times))


def _image_costs(repeats: int) -> dict[str, float]:
    """Per-image wall time (ms, p50) of the camera render and of the depth image's three ways, on the
    rover's view of the UCF arena."""
    profile = SimSensorProfile()
    with World(1, (), site=make_site(preset("ucf"), 1)) as world:
        rover = world.add_rover("r1", Pose2D(1.2, 1.0, 0.0), profile)
        rig = rover.camera._rig if rover.camera is not None else None
        if not isinstance(rig, _CameraRig):
            raise RuntimeError("bench: the default profile has no camera")
        camera_ms = _p50_ms(lambda: rig.render(0.0), repeats)  # RGB and its z-buffer, noise included
        decimated = _DepthRig(rover, rig)
        render = rig.render(0.0)
        k = profile.depth_decimation() or 1
        sampled_ms = _p50_ms(lambda: decimated._to_depth(0.0, render.zbuf[k // 2 :: k, k // 2 :: k]), repeats)
        info = profile.depth_info()
        proj = gl_projection_matrix(info, profile.camera_near_m, profile.camera_far_m).T.ravel().tolist()
        own_ms = _p50_ms(lambda: _tiny_render(rover, info, proj), repeats)
        rot, pos = rover.camera_pose_in_map()
        v, u = np.mgrid[0 : info.height_px, 0 : info.width_px]
        rays = np.stack([(u - info.cx_px) / info.fx_px, (v - info.cy_px) / info.fy_px, np.ones(u.shape)], -1)
        ends = (pos + rays.reshape(-1, 3) @ rot.T * profile.camera_far_m).tolist()
        starts = np.broadcast_to(pos, (len(ends), 3)).tolist()
        c = world.client

        def cast() -> None:
            for i in range(0, len(ends), c.MAX_RAY_INTERSECTION_BATCH_SIZE):
                j = i + c.MAX_RAY_INTERSECTION_BATCH_SIZE
                c.rayTestBatch(starts[i:j], ends[i:j], numThreads=1)

        ray_ms = _p50_ms(cast, max(1, repeats // 3))
        world.sunlit_map()  # cached once per terrain: the per-frame cost is the shading
        vp = np.asarray(rig._proj, dtype=np.float64).reshape(4, 4).T @ gl_view_matrix(rot, pos)
        shade_ms = _p50_ms(lambda: world.shade_cast_shadows(render.bgr, render.zbuf, vp, 0.15, 1.0), repeats)
    return {
        "camera_640x480_render_ms": camera_ms,
        "depth_160x120_sampled_from_camera_ms": sampled_ms,
        "depth_160x120_own_render_ms": own_ms,
        "depth_160x120_raytestbatch_ms": ray_ms,
        "raytestbatch_over_own_render": ray_ms / own_ms,
        "camera_cast_shadow_shading_ms": shade_ms,
    }


def run_sim_bench(sim_seconds: float = 10.0, soil_repeats: int = 30) -> dict[str, Any]:
    """Measured figures (one run each; medians inside the soil, terrain and image figures)."""
    physics = _run(SimSensorProfile(camera_enabled=False), sim_seconds, read_ports=False)
    sensors = _run(SimSensorProfile(), sim_seconds, read_ports=True)
    variants = {
        "camera_640x480_3hz": SimSensorProfile(camera_rate_hz=3.0),
        "camera_480x360_5hz": SimSensorProfile(
            camera_width_px=480, camera_height_px=360, depth_width_px=160, depth_height_px=120
        ),
        "camera_320x240_5hz": SimSensorProfile(
            camera_width_px=320, camera_height_px=240, depth_width_px=160, depth_height_px=120
        ),
        "depth_only_160x120_5hz": SimSensorProfile(camera_width_px=160, camera_height_px=120),
    }
    soil = bench_soil_ops(repeats=soil_repeats)
    return {
        "physics_only": physics,
        "default_sensors": sensors,
        "sensor_variants_x_real_time": {
            name: _run(p, sim_seconds / 2, read_ports=True)["x_real_time"] for name, p in variants.items()
        },
        "image_costs": _image_costs(repeats=9),
        "digging_x_real_time": _digging_x_real_time(sim_seconds / 2),
        "soil_ops_ms": soil,
        "terrain_update_ms": _terrain_update_ms(soil_repeats),
        "targets": {"physics_x_real_time": 20.0, "sensors_x_real_time": 5.0, "soil_op_ms": 2.0},
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run_sim_bench(), indent=2))
