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

from autonomy.mission.site_zones import PRESET_ZONES, Box, FiducialBar
from sim.sinkage import SoilBearing

__all__ = ["Box", "FiducialBar"]  # re-exported: the zone geometry is autonomy.mission.site_zones's

FloatArray = npt.NDArray[np.float64]

# SeedSequence streams of a site (separate from the World's own streams).
_STREAM_OBSTACLES = 10
_STREAM_GROUND = 11


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
    # every seed keeps a free corridor this wide (m) joining the start, excavation and construction zones
    # (boulders to their edge, craters to their rim at 1.5 radii, walls); a draw without one is redrawn.
    # 0.9 m: the 0.68 m rover (stowed width limit 0.75 m) with 0.11 m a side. None: no check (open site)
    corridor_m: float | None = 0.9

    def __post_init__(self) -> None:
        arena = Box(0.0, 0.0, self.size_m[0], self.size_m[1])
        for name in ("start_zone", "excavation_zone", "obstacle_zone", "construction_zone"):
            zone = getattr(self, name)
            if not zone.inside(arena):
                raise ValueError(f"SitePreset {self.name}: {name} {zone} lies outside the arena {arena}")
        if not self.target_box.inside(self.construction_zone):
            raise ValueError(f"SitePreset {self.name}: target box outside the construction zone")
        if self.corridor_m is not None and not (math.isfinite(self.corridor_m) and self.corridor_m > 0.0):
            raise ValueError(f"SitePreset {self.name}: corridor_m must be None or > 0, got {self.corridor_m}")
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


def _from_zones(name: str, **sim_only: object) -> SitePreset:
    """The simulated site of a preset: its zone layout from ``autonomy.mission.site_zones`` (one source of
    the numbers for the planner, the mission reader and the simulator) plus what only the simulator needs."""
    z = PRESET_ZONES[name]
    return SitePreset(
        name=z.name,
        size_m=z.size_m,
        start_zone=z.start_zone,
        excavation_zone=z.excavation_zone,
        obstacle_zone=z.obstacle_zone,
        construction_zone=z.construction_zone,
        target_box=z.target_box,
        berm_size_m=z.berm_size_m,
        fiducial_bar=z.fiducial_bar,
        run_minutes=z.run_minutes,
        cell_m=z.cell_m,
        soil_depth_m=z.soil_depth_m,
        repose_deg=z.repose_deg,
        **sim_only,  # type: ignore[arg-type]
    )


def _ucf() -> SitePreset:
    return _from_zones("ucf")


def _ksc() -> SitePreset:
    return _from_zones("ksc")


def _open_site() -> SitePreset:
    return _from_zones(
        "open",
        boulder_count=25,
        boulder_diameter_m=(0.2, 0.8),
        crater_count=15,
        crater_diameter_m=(0.5, 3.0),
        terrain_amplitude_m=0.15,
        slope_deg=3.0,
        walls=False,
        lighting=LOW_SUN,
        corridor_m=None,
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
    0.3 m gap), none in the start, excavation or construction zone nor closer than 0.3 m to a wall, and (with
    ``p.corridor_m``) a corridor that wide stays free between the zones; a draw without it is redrawn from
    the same stream, so a seed whose first draw has a corridor keeps its obstacles."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"make_site: seed must be a non-negative int, got {seed!r}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAM_OBSTACLES,)))
    keep_out = (p.start_zone, p.excavation_zone, p.construction_zone)

    def draw(placed: list[tuple[float, float, float]], diam_range: tuple[float, float]) -> tuple[float, float, float]:
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

    for _attempt in range(_MAX_SITE_DRAWS):
        placed: list[tuple[float, float, float]] = []
        boulders = tuple(Boulder(*draw(placed, p.boulder_diameter_m)) for _ in range(p.boulder_count))
        craters = []
        for _ in range(p.crater_count):
            x, y, d = draw(placed, p.crater_diameter_m)
            craters.append(Crater(x, y, d, d * float(rng.uniform(*p.crater_depth_fraction))))
        site = Site(p, seed, boulders, tuple(craters))
        if p.corridor_m is None or has_corridor(site, p.corridor_m):
            return site
    raise ValueError(
        f"make_site({p.name}, seed {seed}): no draw of {_MAX_SITE_DRAWS} kept a {p.corridor_m} m corridor "
        "between the start, excavation and construction zones; lower corridor_m or the obstacle counts"
    )


_MAX_SITE_DRAWS = 200
_CORRIDOR_CELL_M = 0.05


def has_corridor(site: Site, width_m: float) -> bool:
    """A disc of diameter ``width_m`` can move between the start, excavation and construction zones without
    touching a boulder, a crater's rim (1.5 radii) or the arena's edge (5 cm grid, 8-connected)."""
    from scipy import ndimage

    p = site.preset
    half = width_m / 2
    nx = math.ceil(p.size_m[0] / _CORRIDOR_CELL_M)
    ny = math.ceil(p.size_m[1] / _CORRIDOR_CELL_M)
    xs = (np.arange(nx) + 0.5) * _CORRIDOR_CELL_M
    ys = (np.arange(ny) + 0.5) * _CORRIDOR_CELL_M
    xx, yy = np.meshgrid(xs, ys)
    free = (xx >= half) & (xx <= p.size_m[0] - half) & (yy >= half) & (yy <= p.size_m[1] - half)
    for b in site.boulders:
        free &= np.hypot(xx - b.x_m, yy - b.y_m) > b.diameter_m / 2 + half
    for c in site.craters:
        free &= np.hypot(xx - c.x_m, yy - c.y_m) > 0.75 * c.diameter_m + half
    labels, _count = ndimage.label(free, structure=np.ones((3, 3), dtype=bool))
    zone_labels = []
    for zone in (p.start_zone, p.excavation_zone, p.construction_zone):
        inside = (xx >= zone.x_min_m) & (xx <= zone.x_max_m) & (yy >= zone.y_min_m) & (yy <= zone.y_max_m)
        found = set(np.unique(labels[inside & free]).tolist())
        if not found:
            return False
        zone_labels.append(found)
    return bool(zone_labels[0] & zone_labels[1] & zone_labels[2])


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
