"""The simulated site: one PyBullet physics client per ``World`` (no global pybullet state).

A ``World`` holds the lunar terrain (a heightfield of seeded smooth noise under lunar gravity), a few
rocks kept off the mission path, the AprilTag beacons of the site survey, and the rovers added to it
(``add_rover``). Time is simulated: ``World.clock`` is the rovers' ``hw.interfaces.Clock``, and its
``sleep_until`` steps the physics in fixed ``1/physics_hz`` steps (lockstep with the rover loop).

Frames: ``map`` as in ``autonomy.msgs`` (x east, y north/left, z up). The terrain covers
``center_xy +- size_m / 2``; its mean height is about 0.

Determinism: everything random (terrain, rocks, textures, sensor noise) is drawn from numpy Generators
seeded from ``seed`` (and the rover id), and the physics runs with deterministic pair ordering, so the
same seed and the same commands give bit-identical runs.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter as _perf_counter
from types import TracebackType
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from autonomy.mission.site_zones import BAR_DEPTH_M
from autonomy.msgs import Landmark, Pose2D
from sim.backend import SimRover, SimSensorProfile
from sim.judge import ElevationScan
from sim.quiet import stdout_to_devnull
from sim.regolith import Bucket, SoilMap, Window
from sim.sinkage import SoilBearing
from sim.sites import Lighting, Site, ground_surface

with stdout_to_devnull():  # pybullet's C code prints its build time on import
    import pybullet  # noqa: TID251 -- connection-mode constants only; every call goes through the BulletClient
    from pybullet_utils.bullet_client import BulletClient

LUNAR_GRAVITY_MPS2 = 1.62
ROVER_CLEARANCE_RADIUS_M = 0.8  # circle around base_link that holds the rover, its wheels and its bucket

# Streams of the world's SeedSequence: one per consumer, so adding one never shifts another.
_STREAM_TERRAIN = 0
_STREAM_ROCKS = 1
_STREAM_TEXTURE = 2
_STREAM_BOULDERS = 3

# The heightfield's collision bounds are fixed when it is created (Bullet keeps the first min/max height):
# it is created with this headroom above the highest and below the lowest surface so soil piled or dug
# later still collides (measured: a replaced heightfield above its first bounds lets bodies fall through).
_HEIGHTFIELD_HEADROOM_M = 1.0
_WALL = (0.55, 0.55, 0.58, 1.0)
_WALL_CELL_M = 0.25  # wall visual mesh cell (see _grid_box)
_TERRAIN_VISUAL_STRIDE = 2  # a static terrain's visual mesh takes every 2nd height post (_terrain_mesh)
# Overview render lighting: a lunar sky adds little ambient light, so cast shadows are dark.
SCENE_AMBIENT = 0.2
SCENE_DIFFUSE = 1.0

_ROCK_COLLISION_MARGIN_M = 0.02

_REGOLITH = (0.58, 0.56, 0.53, 1.0)
_ROCK = (0.42, 0.40, 0.38, 1.0)
_POST = (0.30, 0.30, 0.32, 1.0)
_PLATE = (0.20, 0.20, 0.22, 1.0)

# AprilTag texture layout: 36h11 is 8 cells across its black border; a white quiet zone of
# TAG_QUIET_CELLS cells surrounds it on the plate.
TAG_CELLS = 8
TAG_QUIET_CELLS = 2
_TAG_CELL_PX = 16


@dataclass(frozen=True, slots=True)
class RockInfo:
    """A rock placed in the world: centre (m, ``map``), radius of its bounding circle on the ground (m)."""

    x_m: float
    y_m: float
    radius_m: float
    height_m: float
    body_id: int


class SimClock:
    """``hw.interfaces.Clock`` on simulated time: ``sleep_until`` steps the physics (lockstep)."""

    def __init__(self, world: World) -> None:
        self._world = world

    def now_s(self) -> float:
        return self._world.time_s

    def sleep_until(self, t_s: float) -> None:
        if not math.isfinite(t_s):
            raise ValueError(f"SimClock.sleep_until: t_s must be finite, got {t_s!r}")
        self._world.run_until(t_s)


def point_to_polyline_distance_m(
    points_xy: npt.NDArray[np.float64], polyline_xy: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Distance (m) from each point (N x 2) to the nearest segment of a polyline (M x 2, M >= 1)."""
    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    line = np.asarray(polyline_xy, dtype=np.float64).reshape(-1, 2)
    if line.shape[0] == 0:
        return np.full(pts.shape[0], np.inf)
    if line.shape[0] == 1:
        return np.asarray(np.linalg.norm(pts - line[0], axis=1), dtype=np.float64)
    a = line[:-1][None, :, :]  # 1 x S x 2
    ab = (line[1:] - line[:-1])[None, :, :]
    ap = pts[:, None, :] - a  # N x S x 2
    denom = np.maximum(np.sum(ab * ab, axis=-1), 1e-12)
    t = np.clip(np.sum(ap * ab, axis=-1) / denom, 0.0, 1.0)
    closest = a + t[..., None] * ab
    d = np.linalg.norm(pts[:, None, :] - closest, axis=-1)
    return np.asarray(d.min(axis=1), dtype=np.float64)


def _smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], cell_m: float, correlation_m: float
) -> npt.NDArray[np.float64]:
    """Zero-mean, unit-peak smooth noise: white noise low-passed with a Gaussian of ``correlation_m``."""
    white = rng.standard_normal(shape)
    fy = np.fft.fftfreq(shape[0], d=cell_m)
    fx = np.fft.rfftfreq(shape[1], d=cell_m)
    f2 = fy[:, None] ** 2 + fx[None, :] ** 2
    spectrum = np.fft.rfft2(white) * np.exp(-2.0 * (math.pi * correlation_m) ** 2 * f2)
    field = np.fft.irfft2(spectrum, s=shape)
    field -= field.mean()
    peak = float(np.abs(field).max())
    return np.asarray(field / peak if peak > 0 else field, dtype=np.float64)


def _icosphere(subdivisions: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Unit icosphere: vertices (V x 3) and triangles (F x 3, counter-clockwise seen from outside)."""
    t = (1.0 + math.sqrt(5.0)) / 2.0
    verts = [
        (-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t),
        (0, -1, -t), (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1),
    ]  # fmt: skip
    faces = [
        (0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
        (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5),
        (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1),
    ]  # fmt: skip
    v = [np.array(p, dtype=np.float64) / np.linalg.norm(p) for p in verts]
    f = list(faces)
    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}

        def mid(i: int, j: int, cache: dict[tuple[int, int], int] = cache) -> int:
            key = (min(i, j), max(i, j))
            if key not in cache:
                m = v[i] + v[j]
                v.append(m / np.linalg.norm(m))
                cache[key] = len(v) - 1
            return cache[key]

        nf = []
        for a, b, c in f:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            nf += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        f = nf
    return np.array(v), np.array(f, dtype=np.int64)


def _write_obj(
    path: Path,
    vertices: npt.NDArray[np.float64],
    faces: npt.NDArray[np.int64],
    normals: npt.NDArray[np.float64] | None = None,
    uvs: npt.NDArray[np.float64] | None = None,
) -> None:
    """A Wavefront OBJ; normals and UVs, when given, are per vertex (same index as the vertex)."""
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    if uvs is not None:
        lines += [f"vt {u:.6f} {v:.6f}" for u, v in uvs]
    if normals is not None:
        lines += [f"vn {x:.6f} {y:.6f} {z:.6f}" for x, y, z in normals]
    for face in faces + 1:
        if uvs is not None and normals is not None:
            lines.append("f " + " ".join(f"{i}/{i}/{i}" for i in face))
        elif normals is not None:
            lines.append("f " + " ".join(f"{i}//{i}" for i in face))
        else:
            lines.append("f " + " ".join(str(i) for i in face))
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


def _grid_face(
    half_m: float, cells: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """A square of side ``2 half_m`` in the y-z plane facing +x, split into ``cells`` x ``cells`` squares:
    vertices, counter-clockwise triangles (seen from +x), normals and UVs (u along +y, v along +z)."""
    t = np.linspace(0.0, 1.0, cells + 1)
    uu, vv = np.meshgrid(t, t)  # row index: v, column index: u
    uv = np.stack([uu.ravel(), vv.ravel()], axis=1)
    side = (2.0 * uv - 1.0) * half_m
    verts = np.stack([np.zeros(uv.shape[0]), side[:, 0], side[:, 1]], axis=1)
    idx = np.arange((cells + 1) ** 2).reshape(cells + 1, cells + 1)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()  # (u, v), (u + 1, v)
    c, d = idx[1:, 1:].ravel(), idx[1:, :-1].ravel()  # (u + 1, v + 1), (u, v + 1)
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)]).astype(np.int64)
    normals = np.tile([1.0, 0.0, 0.0], (uv.shape[0], 1))
    return verts, faces, normals, uv


def _terrain_mesh(
    heights_m: npt.NDArray[np.float64], origin_xy: tuple[float, float], cell_xy_m: tuple[float, float]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """A visual mesh of a heightmap (ny x nx) sampled every ``_TERRAIN_VISUAL_STRIDE`` posts (the last row and
    column kept): vertices in ``map``, counter-clockwise triangles seen from above (split along the
    (ix, iy)-(ix + 1, iy + 1) diagonal like Bullet's heightfield), per-vertex normals from the height
    gradient and UVs spanning the map once (u along x, v along y)."""
    ny, nx = heights_m.shape
    k = _TERRAIN_VISUAL_STRIDE
    iy = np.unique(np.append(np.arange(0, ny, k), ny - 1))
    ix = np.unique(np.append(np.arange(0, nx, k), nx - 1))
    h = heights_m[np.ix_(iy, ix)]
    xs = origin_xy[0] + ix * cell_xy_m[0]
    ys = origin_xy[1] + iy * cell_xy_m[1]
    gx, gy = np.meshgrid(xs, ys)
    verts = np.stack([gx.ravel(), gy.ravel(), h.ravel()], axis=1)
    dzdy, dzdx = np.gradient(h, ys, xs)
    normals = np.stack([-dzdx.ravel(), -dzdy.ravel(), np.ones(h.size)], axis=1)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    span_x, span_y = xs[-1] - xs[0], ys[-1] - ys[0]
    uvs = np.stack([(gx.ravel() - xs[0]) / span_x, (gy.ravel() - ys[0]) / span_y], axis=1)
    idx = np.arange(h.size).reshape(h.shape)
    p00, p10 = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()  # (ix, iy), (ix + 1, iy)
    p11, p01 = idx[1:, 1:].ravel(), idx[1:, :-1].ravel()
    faces = np.concatenate([np.stack([p00, p10, p11], 1), np.stack([p00, p11, p01], 1)]).astype(np.int64)
    return verts, faces, normals, uvs


def _grid_box(
    half_extents: Sequence[float], cell_m: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """A box (centred at the origin) whose six faces are grids of squares at most ``cell_m`` across:
    vertices, counter-clockwise triangles seen from outside, and per-vertex face normals.

    TinyRenderer walks every pixel of a triangle's screen bounding box: a long wall made of two triangles
    per face costs a whole-image scan per triangle (measured: 13 ms of a 47 ms 640x480 UCF frame), a gridded
    one only about the pixels it covers."""
    hx = np.asarray(half_extents, dtype=np.float64)
    verts: list[npt.NDArray[np.float64]] = []
    faces: list[npt.NDArray[np.int64]] = []
    normals: list[npt.NDArray[np.float64]] = []
    count = 0
    for axis in range(3):
        for sign in (1.0, -1.0):
            a, b = (axis + 1) % 3, (axis + 2) % 3  # (a, b, axis) right-handed: a x b = +axis
            if sign < 0:
                a, b = b, a
            na = max(1, math.ceil(2.0 * hx[a] / cell_m))
            nb = max(1, math.ceil(2.0 * hx[b] / cell_m))
            ua, ub = np.meshgrid(np.linspace(-hx[a], hx[a], na + 1), np.linspace(-hx[b], hx[b], nb + 1))
            v = np.zeros((ua.size, 3))
            v[:, a], v[:, b], v[:, axis] = ua.ravel(), ub.ravel(), sign * hx[axis]
            idx = np.arange(ua.size).reshape(nb + 1, na + 1) + count
            p00, p10 = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
            p11, p01 = idx[1:, 1:].ravel(), idx[1:, :-1].ravel()
            faces.append(np.concatenate([np.stack([p00, p10, p11], 1), np.stack([p00, p11, p01], 1)]))
            n = np.zeros(3)
            n[axis] = sign
            verts.append(v)
            normals.append(np.tile(n, (ua.size, 1)))
            count += ua.size
    return np.concatenate(verts), np.concatenate(faces).astype(np.int64), np.concatenate(normals)


def sun_visibility(
    heights_m: npt.NDArray[np.float64], cell_xy_m: tuple[float, float], sun_direction: Sequence[float]
) -> npt.NDArray[np.bool_]:
    """Cast shadows on a heightmap (ny x nx, row = y): True where a cell sees the sun.

    A cell at height h is in shadow when, marching k steps of ds towards the sun's azimuth, some sample of
    the map rises above the sun ray h + k ds tan(elevation). Samples are bilinear (``cv2.warpAffine``);
    off the map counts as open sky. The march stops at the length the map's relief can throw a shadow,
    (max - min) / tan(elevation). One full-grid shift per step: vectorised, no per-cell loop.
    """
    h = np.asarray(heights_m, dtype=np.float32)
    d = np.asarray(sun_direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    horizontal = math.hypot(float(d[0]), float(d[1]))
    lit = np.ones(h.shape, dtype=bool)
    if d[2] <= 0.0:
        return np.zeros(h.shape, dtype=bool)  # the sun is down
    if horizontal < 1e-9:
        return lit  # overhead sun: no cast shadows
    tan_el = float(d[2]) / horizontal
    ux, uy = float(d[0]) / horizontal, float(d[1]) / horizontal
    ds = min(cell_xy_m)
    relief = float(h.max() - h.min())
    steps = min(math.ceil(relief / tan_el / ds), int(math.hypot(*h.shape)) + 1)
    ny, nx = h.shape
    for k in range(1, steps + 1):
        # value at cell (i, j) = h at (i + k ds uy / cy, j + k ds ux / cx): warpAffine samples src(M [x, y, 1])
        m = np.array([[1.0, 0.0, k * ds * ux / cell_xy_m[0]], [0.0, 1.0, k * ds * uy / cell_xy_m[1]]])
        ahead = cv2.warpAffine(
            h, m, (nx, ny), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT, borderValue=-1e9,
        )  # fmt: skip
        lit &= ahead <= h + np.float32(k * ds * tan_el)
    return lit


def apriltag_texture(tag_id: int) -> npt.NDArray[np.uint8]:
    """The printed plate of an AprilTag 36h11: the tag (8 cells across its black border) inside a white
    quiet zone of ``TAG_QUIET_CELLS`` cells, as a grey uint8 image (the plate is
    ``(TAG_CELLS + 2 TAG_QUIET_CELLS) / TAG_CELLS`` times the tag's size)."""
    dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
    n_tags = int(dictionary.bytesList.shape[0])
    if not 0 <= tag_id < n_tags:
        raise ValueError(f"AprilTag 36h11 has ids 0..{n_tags - 1}, got {tag_id}")
    side_px = TAG_CELLS * _TAG_CELL_PX
    tag = cv2.aruco.generateImageMarker(dictionary, tag_id, side_px)
    margin = TAG_QUIET_CELLS * _TAG_CELL_PX
    plate = cv2.copyMakeBorder(tag, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=255)
    return np.asarray(plate, dtype=np.uint8)


class World:
    """A simulated lunar site bound to its own PyBullet client. Use as a context manager, or ``close()``.

    ``beacons``: the surveyed AprilTags (each gets a post, a backing plate and a textured tag face).
    ``keep_clear_xy``: the mission path as a polyline in ``map``; no rock comes within
    ``keep_clear_radius_m`` of any of its segments (nor within ``beacon_clear_m`` of a beacon).
    ``bearing``: soft-soil parameters for wheel sinkage (``sim.sinkage``; default the site's, else none).
    """

    def __init__(
        self,
        seed: int,
        beacons: Sequence[Landmark],
        keep_clear_xy: Sequence[tuple[float, float]] = (),
        keep_clear_radius_m: float = 1.0,
        size_m: tuple[float, float] = (24.0, 24.0),
        gui: bool = False,
        physics_hz: float = 240.0,
        *,
        center_xy: tuple[float, float] = (0.0, 0.0),
        cell_m: float = 0.08,
        terrain_amplitude_m: float = 0.03,
        rock_count: int | None = None,
        beacon_clear_m: float = 1.0,
        site: Site | None = None,
        bearing: SoilBearing | None = None,
    ) -> None:
        if site is not None:
            size_m = site.preset.size_m
            center_xy = site.preset.center_xy
            cell_m = site.preset.cell_m
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"World: seed must be a non-negative int, got {seed!r}")
        if not physics_hz > 0:
            raise ValueError(f"World: physics_hz must be > 0, got {physics_hz}")
        if not (size_m[0] > 2 * cell_m and size_m[1] > 2 * cell_m):
            raise ValueError(f"World: size_m {size_m} too small for cell_m {cell_m}")
        if not 0.0 <= terrain_amplitude_m <= 0.5:
            raise ValueError(f"World: terrain_amplitude_m must be in [0, 0.5], got {terrain_amplitude_m}")
        if keep_clear_radius_m < 0:
            raise ValueError(f"World: keep_clear_radius_m must be >= 0, got {keep_clear_radius_m}")
        tag_ids = [b.tag_id for b in beacons]
        if len(set(tag_ids)) != len(tag_ids):
            raise ValueError(f"World: beacon tag ids must be unique, got {tag_ids}")
        self.seed = seed
        self.gravity_mps2 = LUNAR_GRAVITY_MPS2
        self.physics_hz = float(physics_hz)
        self.dt_s = 1.0 / self.physics_hz
        self.beacons: tuple[Landmark, ...] = tuple(beacons)
        path = tuple((float(x), float(y)) for x, y in keep_clear_xy)
        self.keep_clear_xy: tuple[tuple[float, float], ...] = path
        self.keep_clear_radius_m = float(keep_clear_radius_m)
        self.size_m = (float(size_m[0]), float(size_m[1]))
        self.center_xy = (float(center_xy[0]), float(center_xy[1]))
        self.site = site
        self.lighting: Lighting = site.preset.lighting if site is not None else Lighting()
        # Wheel sinkage (sim/sinkage.py): ``bearing`` overrides the site's; None is firm ground.
        self.bearing: SoilBearing | None = bearing if bearing is not None or site is None else site.preset.bearing
        self.soil: SoilMap | None = None
        self.terrain_update_ms: list[float] = []
        # the collision heightfield follows the soil at most this often (s of simulated time; 0: every change)
        self.soil_push_period_s = 0.25
        self._soil_dirty = False
        self._soil_pushed_s = -math.inf
        self._sunlit: npt.NDArray[np.bool_] | None = None  # cast-shadow map, reset when the terrain changes
        self._terrain_shape = -1
        self._terrain_bounds_m = (0.0, 0.0)
        self._steps = 0
        self._closed = False
        self._rovers: dict[str, SimRover] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="regolith_world_")
        self.asset_dir = Path(self._tmp.name)
        mode = pybullet.GUI if gui else pybullet.DIRECT
        with stdout_to_devnull():  # and "argv[0]=" on connect: keep stdout clean for JSON and reports
            self.client: Any = BulletClient(connection_mode=mode)
        try:
            c = self.client
            c.setGravity(0.0, 0.0, -self.gravity_mps2)
            # Cone friction off: PyBullet's implicit friction cone ignores the wheels' anisotropic
            # (low lateral) friction after the first slip, and skid-steer turns then lose half their rate.
            c.setPhysicsEngineParameter(
                fixedTimeStep=self.dt_s, numSubSteps=0, deterministicOverlappingPairs=1, enableConeFriction=0
            )
            self._build_terrain(cell_m, terrain_amplitude_m)
            self.beacon_body_ids: dict[int, tuple[int, ...]] = {}
            self.fixture_body_ids: list[int] = []  # walls and the fiducial bar (site worlds)
            for lm in self.beacons:
                self.beacon_body_ids[lm.tag_id] = self._build_beacon(lm)
            self.rocks: tuple[RockInfo, ...]
            if site is None:
                self.rocks = self._build_rocks(rock_count, beacon_clear_m)
            else:
                self.rocks = self._build_boulders(site)
                self._build_site_fixtures(site)
        except BaseException:
            self.close()
            raise
        self.clock = SimClock(self)

    def _rng(self, stream: int) -> np.random.Generator:
        """The generator of one consumer of randomness (its own child of the world's seed)."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(stream,)))

    # ------------------------------------------------------------------------------------------------
    # Time
    # ------------------------------------------------------------------------------------------------

    @property
    def time_s(self) -> float:
        """Simulated time (s): whole physics steps since the world was built."""
        return self._steps / self.physics_hz

    @property
    def steps(self) -> int:
        return self._steps

    def step(self) -> None:
        """One physics step of ``1/physics_hz`` s (rovers apply their command timeouts and meter energy)."""
        self._check_open()
        now = self.time_s
        for rover in self._rovers.values():
            rover._before_step(now)
        if self._soil_dirty and now - self._soil_pushed_s >= self.soil_push_period_s:
            self.flush_soil()
        self.client.stepSimulation()
        self._steps += 1
        for rover in self._rovers.values():
            rover._after_step(self.dt_s)

    def run_until(self, t_s: float) -> None:
        """Step until simulated time reaches ``t_s`` (to the next whole step); no-op if it already has."""
        target = math.ceil(t_s * self.physics_hz - 1e-6)
        while self._steps < target:
            self.step()

    def run_for(self, duration_s: float) -> None:
        self.run_until(self.time_s + duration_s)

    # ------------------------------------------------------------------------------------------------
    # Rovers
    # ------------------------------------------------------------------------------------------------

    def add_rover(self, rover_id: str, start: Pose2D, profile: SimSensorProfile | None = None) -> SimRover:
        """Spawn a rover (``sim/assets/rover.urdf``) resting on the ground at ``start``; its sensor noise
        is seeded from (world seed, ``rover_id``)."""
        self._check_open()
        if rover_id in self._rovers:
            raise ValueError(f"World.add_rover: rover id {rover_id!r} already exists")
        if not self.contains_xy(start.x_m, start.y_m, margin_m=0.8):
            raise ValueError(f"World.add_rover: start {start} is off the terrain (or < 0.8 m from its edge)")
        for rock in self.rocks:
            if start.distance_to_m(rock.x_m, rock.y_m) < ROVER_CLEARANCE_RADIUS_M + rock.radius_m:
                raise ValueError(
                    f"World.add_rover: start {start} of {rover_id!r} overlaps the rock at "
                    f"({rock.x_m:.2f}, {rock.y_m:.2f}); keep rover starts on the keep-clear path"
                )
        rover = SimRover(self, rover_id, start, profile if profile is not None else SimSensorProfile())
        self._rovers[rover_id] = rover
        return rover

    @property
    def rovers(self) -> dict[str, SimRover]:
        return dict(self._rovers)

    def solid_body_ids(self) -> tuple[int, ...]:
        """Every body a rover can hit that is not the terrain: rocks, walls, the fiducial bar, beacons."""
        beacons = [b for ids in self.beacon_body_ids.values() for b in ids]
        return (*(r.body_id for r in self.rocks), *self.fixture_body_ids, *beacons)

    # ------------------------------------------------------------------------------------------------
    # Terrain
    # ------------------------------------------------------------------------------------------------

    def contains_xy(self, x_m: float, y_m: float, margin_m: float = 0.0) -> bool:
        hx, hy = self.size_m[0] / 2 - margin_m, self.size_m[1] / 2 - margin_m
        return abs(x_m - self.center_xy[0]) <= hx and abs(y_m - self.center_xy[1]) <= hy

    def ground_height_m(self, x_m: float, y_m: float) -> float:
        """Terrain height (m, ``map`` z) at (x, y), interpolated on the heightfield's own triangles."""
        return float(self.ground_heights_m(np.array([x_m]), np.array([y_m]))[0])

    def ground_heights_m(self, x_m: npt.ArrayLike, y_m: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Vectorised ``ground_height_m``; points outside the terrain are clamped to its edge."""
        x = np.asarray(x_m, dtype=np.float64)
        y = np.asarray(y_m, dtype=np.float64)
        ny, nx = self._heights.shape
        gx = np.clip((x - self._x0) / self._cell_x, 0.0, nx - 1 - 1e-9)
        gy = np.clip((y - self._y0) / self._cell_y, 0.0, ny - 1 - 1e-9)
        ix = np.floor(gx).astype(np.int64)
        iy = np.floor(gy).astype(np.int64)
        fx = gx - ix
        fy = gy - iy
        h = self._heights
        h00 = h[iy, ix]
        h10 = h[iy, ix + 1]
        h01 = h[iy + 1, ix]
        h11 = h[iy + 1, ix + 1]
        # Bullet splits each cell along the diagonal (ix, iy) - (ix + 1, iy + 1).
        lower = fx >= fy  # triangle (00, 10, 11)
        z_lower = h00 + fx * (h10 - h00) + fy * (h11 - h10)
        z_upper = h00 + fy * (h01 - h00) + fx * (h11 - h01)
        return np.asarray(np.where(lower, z_lower, z_upper), dtype=np.float64)

    @property
    def heights_m(self) -> npt.NDArray[np.float64]:
        """The heightfield (ny x nx, row iy = y, column ix = x), read-only copy."""
        return self._heights.copy()

    # ---- diggable soil (worlds built from a site) ------------------------------------------------------

    def _require_soil(self) -> SoilMap:
        if self.soil is None:
            raise RuntimeError("World: this world has no soil model (build it from a site: World(..., site=...))")
        return self.soil

    def _push_heightfield(self, now: bool = True) -> None:
        """Send the soil surface to the physics: PyBullet 3.2.7 replaces a heightfield whole
        (``replaceHeightfieldIndex``; no sub-rectangle update), about 1.5 ms for the 15k-post UCF grid (5-12 ms
        measured on a loaded 2-core machine, called ~5 times a second while a bucket cuts).

        The surface the world reports (``ground_heights_m``, ``elevation_scan``, the soil interaction) is updated
        at once; with ``now`` False the collision shape follows at most every ``soil_push_period_s`` of simulated
        time (``step``), and at once before a camera or depth render (``flush_soil``): the wheels and the bucket
        meet a surface at most that old (a cut advances ~3 cm in 0.25 s at the dig speed)."""
        soil = self._require_soil()
        t0 = _perf_counter()
        surface = soil.surface_m()
        lo, hi = self._terrain_bounds_m
        if float(surface.min()) < lo or float(surface.max()) > hi:
            raise RuntimeError(
                f"World: soil surface [{float(surface.min()):.3f}, {float(surface.max()):.3f}] m left the "
                f"terrain's collision bounds [{lo:.3f}, {hi:.3f}] m"
            )
        self._heights = np.ascontiguousarray(surface)
        self._heights.setflags(write=False)
        self._sunlit = None
        self._soil_dirty = True
        if now or self.time_s - self._soil_pushed_s >= self.soil_push_period_s:
            self.flush_soil()
        self.terrain_update_ms.append((_perf_counter() - t0) * 1e3)

    def flush_soil(self) -> None:
        """Send a changed soil surface to the physics' collision heightfield now (see ``_push_heightfield``)."""
        if not self._soil_dirty:
            return
        self._soil_dirty = False
        self._soil_pushed_s = self.time_s
        ny, nx = self._heights.shape
        self.client.createCollisionShape(
            self.client.GEOM_HEIGHTFIELD,
            meshScale=[self._cell_x, self._cell_y, 1.0],
            heightfieldData=self._heights.ravel().tolist(),
            numHeightfieldRows=nx,
            numHeightfieldColumns=ny,
            replaceHeightfieldIndex=self._terrain_shape,
        )

    def soil_changed(self, window: Window, defer: bool = False) -> None:
        """Tell the world the soil changed in ``window``: the collision heightfield follows at once, or with
        ``defer`` at most every ``soil_push_period_s`` (``_push_heightfield``: a rover's bucket cutting)."""
        if not window.empty:
            self._push_heightfield(now=not defer or self.soil_push_period_s <= 0.0)

    def dig(
        self,
        x_m: float,
        y_m: float,
        radius_m: float,
        max_depth_m: float,
        bucket: Bucket,
        blade_z_m: float | None = None,
        defer: bool = False,
    ) -> float:
        """Cut soil at (x, y) into ``bucket`` (see ``SoilMap.cut``); the terrain follows (``defer``: see
        ``soil_changed``). Returns m^3 taken."""
        taken, win = self._require_soil().cut(x_m, y_m, radius_m, max_depth_m, bucket, blade_z_m)
        self.soil_changed(win, defer)
        return taken

    def dump(self, bucket: Bucket, x_m: float, y_m: float, radius_m: float = 0.2, defer: bool = False) -> float:
        """Empty ``bucket`` onto a pile at (x, y) (relaxed to the angle of repose; ``defer``: see
        ``soil_changed``). Returns m^3 dumped."""
        soil = self._require_soil()
        vol = bucket.contents_m3
        bucket.contents_m3 = 0.0
        self.soil_changed(soil.fill(x_m, y_m, radius_m, vol), defer)
        return vol

    def elevation_scan(self) -> ElevationScan:
        """The surface heights now (a lidar scan of the site, noise-free)."""
        return ElevationScan(self._heights.copy(), (self._x0, self._y0), (self._cell_x, self._cell_y))

    def sunlit_map(self) -> npt.NDArray[np.bool_]:
        """True where the ground (ny x nx, like ``heights_m``) sees the site's sun: the terrain (craters, piles)
        and the rocks (as domes of their exposed height) cast shadows; rovers and beacons do not. Cached
        until the soil changes."""
        if self._sunlit is None:
            heights = self._heights.copy()
            ny, nx = heights.shape
            xs = self._x0 + np.arange(nx) * self._cell_x
            ys = self._y0 + np.arange(ny) * self._cell_y
            for rock in self.rocks:
                x0 = max(0, int((rock.x_m - rock.radius_m - self._x0) / self._cell_x))
                y0 = max(0, int((rock.y_m - rock.radius_m - self._y0) / self._cell_y))
                ix = slice(x0, min(nx, int((rock.x_m + rock.radius_m - self._x0) / self._cell_x) + 2))
                iy = slice(y0, min(ny, int((rock.y_m + rock.radius_m - self._y0) / self._cell_y) + 2))
                r2 = ((xs[ix][None, :] - rock.x_m) ** 2 + (ys[iy][:, None] - rock.y_m) ** 2) / rock.radius_m**2
                heights[iy, ix] += rock.height_m * np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))  # a dome on the ground
            self._sunlit = sun_visibility(heights, (self._cell_x, self._cell_y), self.lighting.direction())
        return self._sunlit

    def shade_cast_shadows(
        self,
        image_bgr: npt.NDArray[np.uint8],
        zbuf: npt.NDArray[np.float32],
        view_projection: npt.NDArray[np.float64],
        ambient: float,
        diffuse: float,
        ground_tolerance_m: float = 0.03,
    ) -> npt.NDArray[np.uint8]:
        """Darken the ground pixels of a render that lie in cast shadow (``sunlit_map``).

        TinyRenderer's own shadow pass only dims diffuse light by 20% and breaks into stripes (shadow acne)
        under a low sun, so shadows are cast here instead: every pixel's z-buffer value is unprojected
        through the inverse of ``view_projection`` (the OpenGL projection times view, 4x4 row-major) to a
        point in ``map``; a point within ``ground_tolerance_m`` of the ground in a shadowed cell keeps only
        its ambient light, a fraction ambient / (ambient + diffuse sin(elevation)) of a sunlit flat ground's.
        Sky and objects above the ground (rocks, rovers, beacons: lit by the renderer) are left as rendered.
        """
        h, w = zbuf.shape
        sun = self.lighting.direction()
        sin_el = max(0.0, float(sun[2]) / math.sqrt(sum(v * v for v in sun)))
        factor = ambient / max(ambient + diffuse * sin_el, 1e-9)
        valid = zbuf < 1.0 - 1e-7
        if factor >= 1.0 or not valid.any():
            return image_bgr
        rows, cols = np.nonzero(valid)
        # map point = inv(VP) [x_ndc, y_ndc, z_ndc, 1], dehomogenised; written out per row of inv(VP)
        inv = np.linalg.inv(view_projection)
        xn = (2.0 * cols + 1.0) / w - 1.0
        yn = 1.0 - (2.0 * rows + 1.0) / h
        zn = 2.0 * zbuf[rows, cols].astype(np.float64) - 1.0
        hom = [inv[i, 0] * xn + inv[i, 1] * yn + inv[i, 2] * zn + inv[i, 3] for i in range(4)]
        x, y, z = hom[0] / hom[3], hom[1] / hom[3], hom[2] / hom[3]
        ny, nx = self._heights.shape
        gx = (x - self._x0) / self._cell_x
        gy = (y - self._y0) / self._cell_y
        inside = (gx >= -0.5) & (gx <= nx - 0.5) & (gy >= -0.5) & (gy <= ny - 0.5)
        ix = np.clip(np.rint(gx), 0, nx - 1).astype(np.intp)
        iy = np.clip(np.rint(gy), 0, ny - 1).astype(np.intp)
        # on the ground: within the tolerance of the nearest height post (plus half a cell of 45-degree slope)
        near = np.abs(z - self._heights[iy, ix]) < ground_tolerance_m + 0.5 * max(self._cell_x, self._cell_y)
        shadowed = near & inside & ~self.sunlit_map()[iy, ix]
        out = image_bgr.copy()
        r, cc = rows[shadowed], cols[shadowed]
        out[r, cc] = np.round(out[r, cc].astype(np.float32) * np.float32(factor)).astype(np.uint8)
        return out

    def render_scene(
        self, width_px: int = 800, height_px: int = 450, cast_shadows: bool = True
    ) -> npt.NDArray[np.uint8]:
        """An oblique overview of the site (TinyRenderer, BGR uint8), lit by the site's sun; with
        ``cast_shadows`` the ground in the shadow of the terrain and the rocks keeps only the lunar ambient
        light (``shade_cast_shadows``)."""
        c = self.client
        cx, cy = self.center_xy
        span = max(self.size_m)
        view = c.computeViewMatrix(
            cameraEyePosition=[cx - 0.15 * span, cy - 0.75 * span, 0.55 * span],
            cameraTargetPosition=[cx, cy, 0.0],
            cameraUpVector=[0.0, 0.0, 1.0],
        )
        proj = c.computeProjectionMatrixFOV(fov=50.0, aspect=width_px / height_px, nearVal=0.1, farVal=4.0 * span)
        ambient, diffuse = SCENE_AMBIENT, SCENE_DIFFUSE
        result: Any = c.getCameraImage(
            width_px,
            height_px,
            viewMatrix=view,
            projectionMatrix=proj,
            renderer=c.ER_TINY_RENDERER,
            flags=c.ER_NO_SEGMENTATION_MASK,
            shadow=0,
            lightDirection=list(self.lighting.direction()),
            lightAmbientCoeff=ambient,
            lightDiffuseCoeff=diffuse,
            lightSpecularCoeff=0.02,
        )
        rgba = np.asarray(result[2], dtype=np.uint8).reshape(height_px, width_px, 4)
        image = np.ascontiguousarray(rgba[:, :, 2::-1])
        if cast_shadows:
            zbuf = np.asarray(result[3], dtype=np.float32).reshape(height_px, width_px)
            vp = np.asarray(proj, dtype=np.float64).reshape(4, 4).T @ np.asarray(view, dtype=np.float64).reshape(4, 4).T
            image = self.shade_cast_shadows(image, zbuf, vp, ambient, diffuse)
        return image

    def _build_boulders(self, site: Site) -> tuple[RockInfo, ...]:
        rng = self._rng(_STREAM_BOULDERS)
        unit_v, _ = _icosphere(1)
        rocks = []
        for i, b in enumerate(site.boulders):
            squash = float(rng.uniform(0.7, 0.95))
            bumps = np.asarray(rng.uniform(0.85, 1.1, size=unit_v.shape[0]), dtype=np.float64)
            yaw = float(rng.uniform(-math.pi, math.pi))
            rocks.append(self._spawn_rock(b.x_m, b.y_m, b.diameter_m / 2, squash, bumps, yaw, i))
        return tuple(rocks)

    def _build_site_fixtures(self, site: Site) -> None:
        """Arena walls (0.6 m, just outside the arena) and the fiducial bar (a 4 cm bar on two posts)."""
        c = self.client
        p = site.preset
        if p.walls:
            t, height = 0.05, 0.6
            lx, ly = p.size_m
            for cx, cy, hx, hy in (
                (lx / 2, -t / 2, lx / 2 + t, t / 2),
                (lx / 2, ly + t / 2, lx / 2 + t, t / 2),
                (-t / 2, ly / 2, t / 2, ly / 2),
                (lx + t / 2, ly / 2, t / 2, ly / 2),
            ):
                half = [hx, hy, height / 2 + 0.5]
                wall_obj = self.asset_dir / f"wall_{hx:.4f}_{hy:.4f}.obj"
                if not wall_obj.exists():
                    wv, wf, wn = _grid_box(half, _WALL_CELL_M)
                    _write_obj(wall_obj, wv, wf, wn)
                body = c.createMultiBody(
                    baseMass=0.0,
                    baseCollisionShapeIndex=c.createCollisionShape(c.GEOM_BOX, halfExtents=half),
                    baseVisualShapeIndex=c.createVisualShape(c.GEOM_MESH, fileName=str(wall_obj), rgbaColor=_WALL),
                    basePosition=[cx, cy, height / 2 - 0.5],
                )
                self.fixture_body_ids.append(body)
        bar = p.fiducial_bar
        if bar is not None:
            # The bar's back lies on its line (against the wall); its body stands out towards its facing.
            mx = (bar.x0_m + bar.x1_m) / 2 + BAR_DEPTH_M / 2 * math.cos(bar.facing_yaw_rad)
            my = (bar.y0_m + bar.y1_m) / 2 + BAR_DEPTH_M / 2 * math.sin(bar.facing_yaw_rad)
            yaw = math.atan2(bar.y1_m - bar.y0_m, bar.x1_m - bar.x0_m)
            ground = self.ground_height_m(*self._clamp_xy(mx, my))
            half = [bar.length_m / 2, BAR_DEPTH_M / 2, 0.02]
            body = c.createMultiBody(
                baseMass=0.0,
                baseCollisionShapeIndex=c.createCollisionShape(c.GEOM_BOX, halfExtents=half),
                baseVisualShapeIndex=c.createVisualShape(c.GEOM_BOX, halfExtents=half, rgbaColor=_POST),
                basePosition=[mx, my, ground + bar.height_m],
                baseOrientation=c.getQuaternionFromEuler([0.0, 0.0, yaw]),
            )
            self.fixture_body_ids.append(body)

    def _clamp_xy(self, x_m: float, y_m: float) -> tuple[float, float]:
        hx, hy = self.size_m[0] / 2, self.size_m[1] / 2
        cx, cy = self.center_xy
        return min(cx + hx, max(cx - hx, x_m)), min(cy + hy, max(cy - hy, y_m))

    def _build_terrain(self, cell_m: float, amplitude_m: float) -> None:
        nx = round(self.size_m[0] / cell_m) + 1
        ny = round(self.size_m[1] / cell_m) + 1
        self._cell_x = self.size_m[0] / (nx - 1)
        self._cell_y = self.size_m[1] / (ny - 1)
        self._x0 = self.center_xy[0] - self.size_m[0] / 2
        self._y0 = self.center_xy[1] - self.size_m[1] / 2
        rng = self._rng(_STREAM_TERRAIN)
        coarse = _smooth_noise(rng, (ny, nx), cell_m, correlation_m=1.2)
        fine = _smooth_noise(rng, (ny, nx), cell_m, correlation_m=0.3)
        c = self.client
        if self.site is None:
            heights = amplitude_m * (0.8 * coarse + 0.2 * fine)
            heights -= heights.mean()
            self._heights = np.ascontiguousarray(heights, dtype=np.float64)
            self._heights.setflags(write=False)
            shape = c.createCollisionShape(
                c.GEOM_HEIGHTFIELD,
                meshScale=[self._cell_x, self._cell_y, 1.0],
                heightfieldData=self._heights.ravel().tolist(),
                numHeightfieldRows=nx,
                numHeightfieldColumns=ny,
            )
            # Bullet centres the heightfield on its origin, vertically at the middle of its height range.
            mid_z = 0.5 * (float(heights.max()) + float(heights.min()))
        else:
            p = self.site.preset
            noise = 0.8 * coarse + 0.2 * fine
            surface = ground_surface(self.site, (ny, nx), (self._x0, self._y0), (self._cell_x, self._cell_y), noise)
            self.soil = SoilMap.from_surface(
                surface, (self._cell_x, self._cell_y), p.soil_depth_m, (self._x0, self._y0), p.repose_deg
            )
            self._heights = np.ascontiguousarray(self.soil.surface_m())
            self._heights.setflags(write=False)
            # Create with a spike at two corners (the collision bounds), then replace with the real surface.
            lo = float(self.soil.bedrock_m.min()) - 0.05
            hi = float(self._heights.max()) + _HEIGHTFIELD_HEADROOM_M
            init = self._heights.copy()
            init[0, 0], init[-1, -1] = lo, hi
            shape = c.createCollisionShape(
                c.GEOM_HEIGHTFIELD,
                meshScale=[self._cell_x, self._cell_y, 1.0],
                heightfieldData=init.ravel().tolist(),
                numHeightfieldRows=nx,
                numHeightfieldColumns=ny,
            )
            mid_z = 0.5 * (lo + hi)
            self._terrain_shape = shape
            self._terrain_bounds_m = (lo, hi)
        self.terrain_body_id: int = c.createMultiBody(
            baseMass=0.0,
            baseCollisionShapeIndex=shape,
            basePosition=[self.center_xy[0], self.center_xy[1], mid_z],
        )
        if self.soil is not None:
            self._push_heightfield()
        c.changeDynamics(self.terrain_body_id, -1, lateralFriction=1.0, restitution=0.0)
        tex_rng = self._rng(_STREAM_TEXTURE)
        white = tex_rng.normal(150.0, 22.0, size=(512, 512)).astype(np.float32)
        speckle = cv2.GaussianBlur(white, (0, 0), 1.2)
        tex = np.clip(speckle, 0, 255).astype(np.uint8)
        tex_path = self.asset_dir / "regolith.png"
        cv2.imwrite(str(tex_path), cv2.cvtColor(tex, cv2.COLOR_GRAY2BGR))
        texture_id = c.loadTexture(str(tex_path))
        terrain = self.terrain_body_id
        self.terrain_visual_body_id: int | None = None
        if self.site is None and min(self._heights.shape) > 2 * _TERRAIN_VISUAL_STRIDE:
            # A static terrain is drawn from a coarser mesh (every 2nd height post; the collision heightfield is
            # made invisible). TinyRenderer transforms every triangle of every frame, seen or not: the 24 m
            # plain's 180k heightfield triangles cost about 22 ms per camera frame at any resolution (measured
            # with the terrain hidden: 63 -> 12 ms per 640x480 frame). The smooth noise (0.3 m and 1.2 m
            # correlation) differs from its 0.16 m linear interpolation by well under a millimetre.
            c.changeVisualShape(terrain, -1, rgbaColor=[1.0, 1.0, 1.0, 0.0])
            obj = self.asset_dir / "terrain_visual.obj"
            _write_obj(obj, *_terrain_mesh(self._heights, (self._x0, self._y0), (self._cell_x, self._cell_y)))
            vis = c.createVisualShape(c.GEOM_MESH, fileName=str(obj), rgbaColor=list(_REGOLITH))
            terrain = c.createMultiBody(baseMass=0.0, baseVisualShapeIndex=vis, basePosition=[0.0, 0.0, 0.0])
            self.terrain_visual_body_id = terrain
        c.changeVisualShape(terrain, -1, rgbaColor=list(_REGOLITH), textureUniqueId=texture_id)

    # ------------------------------------------------------------------------------------------------
    # Beacons and rocks
    # ------------------------------------------------------------------------------------------------

    def _build_beacon(self, lm: Landmark) -> tuple[int, ...]:
        if not lm.size_m > 0:
            raise ValueError(f"Landmark {lm.tag_id}: size_m must be > 0, got {lm.size_m}")
        c = self.client
        plate_side = lm.size_m * (TAG_CELLS + 2 * TAG_QUIET_CELLS) / TAG_CELLS
        half = plate_side / 2
        tex_path = self.asset_dir / f"tag36h11_{lm.tag_id}.png"
        if not tex_path.exists():
            cv2.imwrite(str(tex_path), apriltag_texture(lm.tag_id))
        # The printed face as a textured square in the beacon frame (x out of the face, z up). A viewer in
        # front looks along -x, so their right is +y: image column u runs along +y, image row v along -z.
        # TinyRenderer interpolates texture coordinates affinely per triangle (not perspective-correct), so
        # the square is a grid with a vertex on every tag cell corner: the tag's corners and cell edges then
        # land exactly where the camera model projects them. Triangles are counter-clockwise seen from the
        # front (TinyRenderer culls clockwise faces).
        quad_path = self.asset_dir / f"tag_face_{lm.tag_id}_{plate_side:.5f}.obj"
        verts, faces, normals, uvs = _grid_face(half, TAG_CELLS + 2 * TAG_QUIET_CELLS)
        _write_obj(quad_path, verts, faces, normals, uvs)

        yaw = lm.facing_yaw_rad
        n = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        centre = np.array([lm.x_m, lm.y_m, lm.z_m])
        orn = c.getQuaternionFromEuler([0.0, 0.0, yaw])
        thick = 0.01
        bodies: list[int] = []
        tag_vis = c.createVisualShape(c.GEOM_MESH, fileName=str(quad_path), meshScale=[1.0, 1.0, 1.0])
        tag_body = c.createMultiBody(
            baseMass=0.0, baseVisualShapeIndex=tag_vis, basePosition=centre.tolist(), baseOrientation=orn
        )
        texture_id = c.loadTexture(str(tex_path))
        c.changeVisualShape(tag_body, -1, textureUniqueId=texture_id, rgbaColor=[1, 1, 1, 1])
        bodies.append(tag_body)
        # Backing plate: its front face 1 mm behind the printed face.
        plate_half = [thick / 2, half + 0.01, half + 0.01]
        plate_pos = centre - n * (thick / 2 + 0.001)
        plate_body = c.createMultiBody(
            baseMass=0.0,
            baseCollisionShapeIndex=c.createCollisionShape(c.GEOM_BOX, halfExtents=plate_half),
            baseVisualShapeIndex=c.createVisualShape(c.GEOM_BOX, halfExtents=plate_half, rgbaColor=_PLATE),
            basePosition=plate_pos.tolist(),
            baseOrientation=orn,
        )
        bodies.append(plate_body)
        # Post from the ground to the plate's lower edge, behind the plate.
        post_xy = centre[:2] - n[:2] * (thick + 0.03)
        ground = (
            self.ground_height_m(float(post_xy[0]), float(post_xy[1]))
            if self.contains_xy(float(post_xy[0]), float(post_xy[1]))
            else None
        )
        if ground is not None:
            top = lm.z_m - half + 0.02
            length = top - (ground - 0.05)
            if length > 0.05:
                post_col = c.createCollisionShape(c.GEOM_CYLINDER, radius=0.025, height=length)
                post_vis = c.createVisualShape(c.GEOM_CYLINDER, radius=0.025, length=length, rgbaColor=_POST)
                post_body = c.createMultiBody(
                    baseMass=0.0,
                    baseCollisionShapeIndex=post_col,
                    baseVisualShapeIndex=post_vis,
                    basePosition=[float(post_xy[0]), float(post_xy[1]), top - length / 2],
                )
                bodies.append(post_body)
        return tuple(bodies)

    def _spawn_rock(
        self, x: float, y: float, radius: float, squash: float, bumps: npt.NDArray[np.float64], yaw: float, index: int
    ) -> RockInfo:
        """A static rock mesh (a bumpy, squashed icosphere of horizontal radius ``radius``), a quarter buried."""
        c = self.client
        unit_v, unit_f = _icosphere(1)
        verts = unit_v * bumps[:, None] * radius
        # Horizontal extent must stay inside the bounding radius used for the keep-clear check.
        horiz = np.hypot(verts[:, 0], verts[:, 1]).max()
        verts[:, :2] *= min(1.0, radius / horiz)
        verts[:, 2] *= squash
        normals = verts / np.linalg.norm(verts, axis=1, keepdims=True)
        obj = self.asset_dir / f"rock_{index}.obj"
        _write_obj(obj, verts, unit_f, normals)
        height = float(verts[:, 2].max() - verts[:, 2].min())
        # Bury a quarter of the rock so it sits in the regolith.
        ground = float(self.ground_heights_m(x + verts[:, 0], y + verts[:, 1]).min())
        z = ground - float(verts[:, 2].min()) - 0.25 * height
        body = c.createMultiBody(
            baseMass=0.0,
            baseCollisionShapeIndex=c.createCollisionShape(c.GEOM_MESH, fileName=str(obj)),
            baseVisualShapeIndex=c.createVisualShape(c.GEOM_MESH, fileName=str(obj), rgbaColor=_ROCK),
            basePosition=[x, y, z],
            baseOrientation=c.getQuaternionFromEuler([0.0, 0.0, yaw]),
        )
        c.changeDynamics(body, -1, lateralFriction=0.9)
        return RockInfo(x, y, radius, 0.75 * height, body)

    def _build_rocks(self, rock_count: int | None, beacon_clear_m: float) -> tuple[RockInfo, ...]:
        rng = self._rng(_STREAM_ROCKS)
        count = int(rng.integers(5, 9)) if rock_count is None else rock_count
        if count < 0:
            raise ValueError(f"World: rock_count must be >= 0, got {count}")
        path = np.array(self.keep_clear_xy, dtype=np.float64).reshape(-1, 2)
        beacon_xy = np.array([[b.x_m, b.y_m] for b in self.beacons], dtype=np.float64).reshape(-1, 2)
        unit_v, _ = _icosphere(1)
        placed: list[tuple[float, float, float]] = []
        rocks: list[RockInfo] = []
        attempts = 0
        while len(rocks) < count:
            attempts += 1
            if attempts > 5000:
                raise ValueError(
                    f"World: could only place {len(rocks)} of {count} rocks clear of the keep-clear path "
                    f"(radius {self.keep_clear_radius_m} m) and the beacons; enlarge size_m, lower rock_count"
                )
            diameter = float(rng.uniform(0.10, 0.40))
            radius = diameter / 2
            margin = 1.0 + radius
            clear = radius + _ROCK_COLLISION_MARGIN_M  # Bullet pads convex hulls by about 1 cm
            x = float(rng.uniform(self._x0 + margin, self._x0 + self.size_m[0] - margin))
            y = float(rng.uniform(self._y0 + margin, self._y0 + self.size_m[1] - margin))
            # Shape draws happen for every candidate so the stream does not depend on rejections' order.
            squash = float(rng.uniform(0.55, 0.85))
            bumps = np.asarray(rng.uniform(0.8, 1.15, size=unit_v.shape[0]), dtype=np.float64)
            yaw = float(rng.uniform(-math.pi, math.pi))
            xy = np.array([[x, y]])
            if path.shape[0] and point_to_polyline_distance_m(xy, path)[0] < self.keep_clear_radius_m + clear:
                continue
            if beacon_xy.shape[0] and np.linalg.norm(beacon_xy - xy, axis=1).min() < beacon_clear_m + clear:
                continue
            if any(math.hypot(x - px, y - py) < radius + pr + 0.3 for px, py, pr in placed):
                continue
            rocks.append(self._spawn_rock(x, y, radius, squash, bumps, yaw, len(rocks)))
            placed.append((x, y, radius))
        return tuple(rocks)

    # ------------------------------------------------------------------------------------------------
    # Lifetime
    # ------------------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("World is closed")

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Disconnect the physics client and remove the world's temporary assets (idempotent)."""
        if self._closed:
            return
        self._closed = True
        client = getattr(self, "client", None)
        if client is not None:
            with contextlib.suppress(pybullet.error):  # already disconnected (e.g. GUI window closed)
                client.disconnect()
        self._tmp.cleanup()

    def __enter__(self) -> World:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
