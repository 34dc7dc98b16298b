"""Construction-site presets as typed data (pure numpy; no pybullet): Lunabotics UCF and KSC arenas and an
open site for base building, with their zones, seeded boulders and craters, and the fiducial bar.

Arena frame: ``map`` with its origin at the arena's ingress corner (the corner of the start zone), x along
the arena's length, y across it, z up. Zone layout (start and excavation at the x = 0 end, obstacle zone
in the middle, construction zone with the target box at the far end) follows the Lunabotics guidebook's
figures; the dimensions within the zones are approximations (see ``domain.md``) and are kept as data
here so they can be corrected in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim.sinkage import SoilBearing

FloatArray = npt.NDArray[np.float64]

# SeedSequence streams of a site (separate from the World's own streams).
_STREAM_OBSTACLES = 10
_STREAM_GROUND = 11


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned rectangle in ``map`` (m)."""

    x_min_m: float
    y_min_m: float
    x_max_m: float
    y_max_m: float

    def __post_init__(self) -> None:
        if not (self.x_max_m > self.x_min_m and self.y_max_m > self.y_min_m):
            raise ValueError(f"Box: need x_max > x_min and y_max > y_min, got {self}")

    @classmethod
    def centred(cls, cx_m: float, cy_m: float, size_x_m: float, size_y_m: float) -> Box:
        return cls(cx_m - size_x_m / 2, cy_m - size_y_m / 2, cx_m + size_x_m / 2, cy_m + size_y_m / 2)

    @property
    def center_xy(self) -> tuple[float, float]:
        return ((self.x_min_m + self.x_max_m) / 2, (self.y_min_m + self.y_max_m) / 2)

    @property
    def size_xy(self) -> tuple[float, float]:
        return (self.x_max_m - self.x_min_m, self.y_max_m - self.y_min_m)

    def contains(self, x_m: float, y_m: float, margin_m: float = 0.0) -> bool:
        return (
            self.x_min_m + margin_m <= x_m <= self.x_max_m - margin_m
            and self.y_min_m + margin_m <= y_m <= self.y_max_m - margin_m
        )

    def inside(self, other: Box) -> bool:
        return (
            other.x_min_m <= self.x_min_m
            and self.x_max_m <= other.x_max_m
            and other.y_min_m <= self.y_min_m
            and self.y_max_m <= other.y_max_m
        )


@dataclass(frozen=True, slots=True)
class Boulder:
    x_m: float
    y_m: float
    diameter_m: float


@dataclass(frozen=True, slots=True)
class Crater:
    """A bowl carved into the ground: rim diameter and depth below the surrounding surface (m)."""

    x_m: float
    y_m: float
    diameter_m: float
    depth_m: float


@dataclass(frozen=True, slots=True)
class FiducialBar:
    """A bar for fiducial markers: from (x0, y0) to (x1, y1) at ``height_m`` above the regolith."""

    x0_m: float
    y0_m: float
    x1_m: float
    y1_m: float
    height_m: float

    @property
    def length_m(self) -> float:
        return math.hypot(self.x1_m - self.x0_m, self.y1_m - self.y0_m)


@dataclass(frozen=True, slots=True)
class Lighting:
    """Sun direction: elevation above the horizon and azimuth (counter-clockwise from +x), degrees."""

    sun_elevation_deg: float = 45.0
    sun_azimuth_deg: float = 30.0

    def direction(self) -> tuple[float, float, float]:
        """Unit vector towards the sun in ``map``."""
        el, az = math.radians(self.sun_elevation_deg), math.radians(self.sun_azimuth_deg)
        return (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))


LOW_SUN = Lighting(sun_elevation_deg=7.0, sun_azimuth_deg=160.0)  # polar: long hard shadows


@dataclass(frozen=True, slots=True)
class SitePreset:
    """A site's fixed layout. Obstacles (boulders, craters) are drawn per seed by ``make_site``."""

    name: str
    size_m: tuple[float, float]
    start_zone: Box
    excavation_zone: Box
    obstacle_zone: Box
    construction_zone: Box
    target_box: Box
    berm_size_m: tuple[float, float]
    fiducial_bar: FiducialBar | None
    boulder_count: int = 3
    boulder_diameter_m: tuple[float, float] = (0.30, 0.40)
    crater_count: int = 3
    crater_diameter_m: tuple[float, float] = (0.40, 0.50)
    crater_depth_fraction: tuple[float, float] = (0.25, 0.4)
    run_minutes: float = 15.0
    cell_m: float = 0.05
    soil_depth_m: float = 0.4
    repose_deg: float = 37.0
    terrain_amplitude_m: float = 0.01
    slope_deg: float = 0.0  # large-scale tilt of the ground (open site), rising along +x
    walls: bool = True
    lighting: Lighting = Lighting()
    bearing: SoilBearing | None = None  # wheel sinkage (sim/sinkage.py); None: firm ground, no sinkage

    def __post_init__(self) -> None:
        arena = Box(0.0, 0.0, self.size_m[0], self.size_m[1])
        for name in ("start_zone", "excavation_zone", "obstacle_zone", "construction_zone"):
            zone = getattr(self, name)
            if not zone.inside(arena):
                raise ValueError(f"SitePreset {self.name}: {name} {zone} lies outside the arena {arena}")
        if not self.target_box.inside(self.construction_zone):
            raise ValueError(f"SitePreset {self.name}: target box outside the construction zone")
        if not 20.0 <= self.repose_deg <= 50.0:
            raise ValueError(f"SitePreset {self.name}: repose_deg must be in [20, 50], got {self.repose_deg}")

    @property
    def arena(self) -> Box:
        return Box(0.0, 0.0, self.size_m[0], self.size_m[1])

    @property
    def center_xy(self) -> tuple[float, float]:
        return (self.size_m[0] / 2, self.size_m[1] / 2)

    def with_lighting(self, lighting: Lighting) -> SitePreset:
        from dataclasses import replace

        return replace(self, lighting=lighting)


def _ucf() -> SitePreset:
    length, width = 8.10, 4.57
    return SitePreset(
        name="ucf",
        size_m=(length, width),
        start_zone=Box(0.0, 0.0, 2.5, 2.0),
        excavation_zone=Box(0.0, 2.3, 2.5, width),
        obstacle_zone=Box(2.5, 0.0, 5.5, width),
        construction_zone=Box(5.5, 0.0, length, width),
        target_box=Box.centred(6.9, width / 2, 1.5, 0.9),
        berm_size_m=(1.3, 0.7),
        fiducial_bar=FiducialBar(0.5, 0.0, 2.0, 0.0, 0.40),
        run_minutes=15.0,
    )


def _ksc() -> SitePreset:
    length, width = 6.88, 5.0
    return SitePreset(
        name="ksc",
        size_m=(length, width),
        start_zone=Box(0.0, 0.0, 2.0, 2.0),
        excavation_zone=Box(0.0, 2.5, 2.0, width),
        obstacle_zone=Box(2.0, 0.0, 4.4, width),
        construction_zone=Box(4.4, 0.0, length, width),
        target_box=Box.centred(5.6, width / 2, 2.2, 0.9),
        berm_size_m=(2.0, 0.7),
        fiducial_bar=FiducialBar(0.5, 0.0, 2.0, 0.0, 0.40),
        run_minutes=30.0,
    )


def _open_site() -> SitePreset:
    size = 40.0
    return SitePreset(
        name="open",
        size_m=(size, size),
        start_zone=Box.centred(20.0, 20.0, 4.0, 4.0),
        excavation_zone=Box.centred(12.0, 20.0, 8.0, 8.0),
        obstacle_zone=Box(2.0, 2.0, 38.0, 38.0),
        construction_zone=Box.centred(28.0, 20.0, 8.0, 8.0),
        target_box=Box.centred(28.0, 20.0, 4.0, 4.0),  # a landing-pad apron
        berm_size_m=(4.0, 1.0),
        fiducial_bar=FiducialBar(18.0, 18.0, 19.5, 18.0, 0.40),
        boulder_count=25,
        boulder_diameter_m=(0.2, 0.8),
        crater_count=15,
        crater_diameter_m=(0.5, 3.0),
        run_minutes=60.0,
        cell_m=0.1,
        terrain_amplitude_m=0.15,
        slope_deg=3.0,
        walls=False,
        lighting=LOW_SUN,
    )


PRESETS: dict[str, SitePreset] = {"ucf": _ucf(), "ksc": _ksc(), "open": _open_site()}


def preset(name: str) -> SitePreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown site preset {name!r}; choose from {sorted(PRESETS)}") from None


@dataclass(frozen=True, slots=True)
class Site:
    """A preset with its seeded obstacles."""

    preset: SitePreset
    seed: int
    boulders: tuple[Boulder, ...]
    craters: tuple[Crater, ...]


def make_site(p: SitePreset, seed: int) -> Site:
    """Draw the boulders and craters of ``p`` in its obstacle zone from ``seed``: no two overlap (with a
    0.3 m gap), none in the start, excavation or construction zone nor closer than 0.3 m to a wall."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"make_site: seed must be a non-negative int, got {seed!r}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAM_OBSTACLES,)))
    keep_out = (p.start_zone, p.excavation_zone, p.construction_zone)
    placed: list[tuple[float, float, float]] = []

    def draw(diam_range: tuple[float, float]) -> tuple[float, float, float]:
        for _ in range(5000):
            d = float(rng.uniform(*diam_range))
            r = d / 2
            z = p.obstacle_zone
            x = float(rng.uniform(z.x_min_m + r + 0.3, z.x_max_m - r - 0.3))
            y = float(rng.uniform(z.y_min_m + r + 0.3, z.y_max_m - r - 0.3))
            if any(k.contains(x, y, margin_m=-(r + 0.1)) for k in keep_out):
                continue
            if any(math.hypot(x - px, y - py) < r + pr + 0.3 for px, py, pr in placed):
                continue
            placed.append((x, y, r))
            return x, y, d
        raise ValueError(f"make_site({p.name}): could not place all obstacles in the obstacle zone")

    boulders = tuple(Boulder(*draw(p.boulder_diameter_m)) for _ in range(p.boulder_count))
    craters = []
    for _ in range(p.crater_count):
        x, y, d = draw(p.crater_diameter_m)
        craters.append(Crater(x, y, d, d * float(rng.uniform(*p.crater_depth_fraction))))
    return Site(p, seed, boulders, tuple(craters))


def ground_surface(
    site: Site,
    shape: tuple[int, int],
    origin_xy: tuple[float, float],
    cell_xy_m: tuple[float, float],
    noise: FloatArray,
) -> FloatArray:
    """The site's surface heights on a grid: ``noise`` (unit-peak, scaled by the preset's amplitude), the
    large-scale slope, and the craters carved in (a parabolic bowl with a raised rim that conserves volume:
    the ejecta around the bowl equals the bowl)."""
    p = site.preset
    ny, nx = shape
    x = origin_xy[0] + np.arange(nx) * cell_xy_m[0]
    y = origin_xy[1] + np.arange(ny) * cell_xy_m[1]
    xx, yy = np.meshgrid(x, y)
    h = p.terrain_amplitude_m * np.asarray(noise, dtype=np.float64)
    h = h + math.tan(math.radians(p.slope_deg)) * (xx - p.size_m[0] / 2)
    for c in site.craters:
        r = np.hypot(xx - c.x_m, yy - c.y_m) / (c.diameter_m / 2)
        bowl = np.where(r < 1.0, -c.depth_m * (1.0 - r**2), 0.0)
        # rim: a ring from r = 1 to 1.5 whose volume matches the bowl's (bowl volume = pi R^2 depth / 2)
        ring = np.where((r >= 1.0) & (r < 1.5), np.sin(np.pi * (r - 1.0) / 0.5), 0.0)
        bowl_sum = float(np.sum(bowl))
        ring_sum = float(np.sum(ring))
        h = h + bowl - (ring * (bowl_sum / ring_sum) if ring_sum > 0 else 0.0)
    return np.asarray(h, dtype=np.float64)
