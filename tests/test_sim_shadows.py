"""Low-sun cast shadows (sim/world.py ``sun_visibility``, ``shade_cast_shadows``): the geometry on a heightmap
by hand, and a boulder's shadow darker than the sunlit ground beside it in the rover camera's image."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("pybullet")

from autonomy.msgs import Pose2D
from sim.backend import SimSensorProfile
from sim.sites import Lighting, make_site, preset
from sim.world import World, sun_visibility


def test_pillar_shadow_on_a_heightmap() -> None:
    """A 0.5 m pillar on flat ground, sun from +x at 45 degrees: it shades 0.5 m of ground on its -x side."""
    cell = 0.05
    h = np.zeros((41, 81))
    h[20, 40] = 0.5  # at x = 2.0 m, y = 1.0 m
    el = math.radians(45.0)
    lit = sun_visibility(h, (cell, cell), (math.cos(el), 0.0, math.sin(el)))
    assert lit[20, 40] and lit[20, 41:].all()  # the pillar's top and the sun side
    assert not lit[20, 32:40].any()  # 0.1 .. 0.4 m behind it: in shadow
    assert lit[20, :28].all()  # past the 0.5 m shadow
    assert lit[10].all() and lit[30].all()  # beside it
    assert not sun_visibility(h, (cell, cell), (1.0, 0.0, -0.1)).any()  # the sun is down
    assert sun_visibility(h, (cell, cell), (0.0, 0.0, 1.0)).all()  # overhead: no cast shadow


def _ground_pixels(world: World, profile: SimSensorProfile, rover_pose: Pose2D, pts_xy: np.ndarray) -> np.ndarray:
    """Pixel (u, v) of ground points (x, y) in the rover's camera (CameraInfo, mount, true pose)."""
    rover = world.rovers["r1"]
    r_cam, p_cam = rover.camera_pose_in_map()
    z = world.ground_heights_m(pts_xy[:, 0], pts_xy[:, 1])
    pts = np.column_stack([pts_xy, z])
    cam = (pts - p_cam) @ r_cam
    info = profile.camera_info()
    u = info.fx_px * cam[:, 0] / cam[:, 2] + info.cx_px
    v = info.fy_px * cam[:, 1] / cam[:, 2] + info.cy_px
    return np.round(np.column_stack([u, v])).astype(int)


@pytest.mark.parametrize("cast", [True, False])
def test_boulder_shadow_is_darker_in_the_camera(cast: bool) -> None:
    """Camera 2 m from a boulder, the sun 10 degrees up on the camera's left: ground 0.1-0.4 m past the
    boulder on its shadow side is much darker than the ground at the same distance on its sun side (with
    cast shadows; TinyRenderer alone barely dims it)."""
    site = make_site(replace(preset("ucf"), walls=False), 3)
    rock = max(site.boulders, key=lambda b: b.x_m)
    yaw = math.pi  # look along -x at the boulder
    pose = Pose2D(rock.x_m + 2.0, rock.y_m, yaw)
    az = yaw + math.pi / 2  # sun on the camera's left: the shadow falls to the right, across the view
    site = replace(site, preset=site.preset.with_lighting(Lighting(10.0, math.degrees(az))))
    profile = SimSensorProfile(
        camera_cast_shadows=cast, camera_ambient=0.15, camera_diffuse=1.0, pixel_noise_sigma=0.0, depth_enabled=False
    )
    with World(3, (), site=site) as world:
        info = next(r for r in world.rocks if math.isclose(r.x_m, rock.x_m) and math.isclose(r.y_m, rock.y_m))
        world.add_rover("r1", pose, profile)
        world.run_for(0.3)
        cam = world.rovers["r1"].camera
        assert cam is not None
        frame = cam.read()
        assert frame is not None
        away = np.array([-math.cos(az), -math.sin(az)])  # from the rock away from the sun
        d = info.radius_m + np.linspace(0.1, 0.4, 7)
        shadow_xy = np.array([info.x_m, info.y_m]) + d[:, None] * away
        sunny_xy = np.array([info.x_m, info.y_m]) - d[:, None] * away
        sunlit = world.sunlit_map()
        grey = frame.image_bgr.mean(axis=2)

        def mean_at(xy: np.ndarray) -> float:
            uv = _ground_pixels(world, profile, pose, xy)
            assert ((uv[:, 0] >= 2) & (uv[:, 0] < 638) & (uv[:, 1] >= 2) & (uv[:, 1] < 478)).all(), uv
            return float(np.mean([grey[v - 1 : v + 2, u - 1 : u + 2].mean() for u, v in uv]))

        shade, sun = mean_at(shadow_xy), mean_at(sunny_xy)
        ix = np.rint((shadow_xy[:, 0] - 0.0) / (world.size_m[0] / (sunlit.shape[1] - 1))).astype(int)
        iy = np.rint((shadow_xy[:, 1] - 0.0) / (world.size_m[1] / (sunlit.shape[0] - 1))).astype(int)
        assert not sunlit[iy, ix].any()  # the map puts those points in the boulder's shadow
    if cast:
        assert shade < 0.6 * sun, (shade, sun)
    else:
        assert shade > 0.85 * sun, (shade, sun)
