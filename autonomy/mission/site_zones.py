"""Site zones as pure data: axis-aligned boxes in ``map`` and the zone layout of each construction-site preset.

These are the planner's and the mission reader's view of a site (no numpy, no sim). The numbers are those of
``sim/sites.py`` (the Lunabotics UCF and KSC arenas and the open base-building site, see ``domain.md``);
``tests/test_mission_file.py`` checks that both stay equal, so a correction is made in one place and the
test points at the other.

Frame: ``map`` with its origin at the arena's ingress corner (the corner of the start zone), x along the
arena's length, y across it, z up (REP-103).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autonomy.msgs import WallLine


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned rectangle in ``map`` (m): ``x_min_m <= x <= x_max_m``, ``y_min_m <= y <= y_max_m``."""

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

    @property
    def area_m2(self) -> float:
        return (self.x_max_m - self.x_min_m) * (self.y_max_m - self.y_min_m)

    def as_list(self) -> list[float]:
        return [self.x_min_m, self.y_min_m, self.x_max_m, self.y_max_m]

    def contains(self, x_m: float, y_m: float, margin_m: float = 0.0) -> bool:
        """(x, y) lies inside, at least ``margin_m`` from every edge (a negative margin grows the box)."""
        return (
            self.x_min_m + margin_m <= x_m <= self.x_max_m - margin_m
            and self.y_min_m + margin_m <= y_m <= self.y_max_m - margin_m
        )

    def inside(self, other: Box, tol_m: float = 1e-9) -> bool:
        """This box lies within ``other``."""
        return (
            other.x_min_m - tol_m <= self.x_min_m
            and self.x_max_m <= other.x_max_m + tol_m
            and other.y_min_m - tol_m <= self.y_min_m
            and self.y_max_m <= other.y_max_m + tol_m
        )

    def overlaps(self, other: Box) -> bool:
        """The two boxes share some area (touching edges do not count)."""
        return (
            self.x_min_m < other.x_max_m
            and other.x_min_m < self.x_max_m
            and self.y_min_m < other.y_max_m
            and other.y_min_m < self.y_max_m
        )

    def shrunk(self, margin_m: float) -> Box | None:
        """The box moved in by ``margin_m`` on every side, or None if nothing is left."""
        x0, y0 = self.x_min_m + margin_m, self.y_min_m + margin_m
        x1, y1 = self.x_max_m - margin_m, self.y_max_m - margin_m
        return Box(x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


BAR_DEPTH_M = 0.04  # the bar's thickness: its back lies on the (x0, y0)-(x1, y1) line (the arena wall at UCF/KSC)
MARKER_STANDOFF_M = BAR_DEPTH_M + 0.005  # marker faces sit on the bar's front face (plus the tag plate)


@dataclass(frozen=True, slots=True)
class FiducialBar:
    """A bar for fiducial markers: its back along (x0, y0)-(x1, y1) (against the wall), ``BAR_DEPTH_M`` thick,
    its centre line ``height_m`` above the regolith; markers sit on its front face and face ``facing_yaw_rad``
    (into the arena)."""

    x0_m: float
    y0_m: float
    x1_m: float
    y1_m: float
    height_m: float
    facing_yaw_rad: float = math.pi / 2

    @property
    def length_m(self) -> float:
        return math.hypot(self.x1_m - self.x0_m, self.y1_m - self.y0_m)

    def marker_positions(self, count: int) -> tuple[tuple[float, float], ...]:
        """``count`` marker centres spread evenly along the bar (centres of equal slots), on its front face."""
        if count < 1:
            raise ValueError(f"FiducialBar.marker_positions: count must be >= 1, got {count}")
        ox = MARKER_STANDOFF_M * math.cos(self.facing_yaw_rad)
        oy = MARKER_STANDOFF_M * math.sin(self.facing_yaw_rad)
        return tuple(
            (
                self.x0_m + (self.x1_m - self.x0_m) * (k + 0.5) / count + ox,
                self.y0_m + (self.y1_m - self.y0_m) * (k + 0.5) / count + oy,
            )
            for k in range(count)
        )


@dataclass(frozen=True, slots=True)
class SiteZones:
    """A site's zone layout (m, ``map``). ``keep_out`` boxes are never dug, dumped on nor driven through by
    plan; ``target_box`` is the judged berm box (Lunabotics) or the main construction target."""

    name: str
    size_m: tuple[float, float]
    start_zone: Box
    excavation_zone: Box
    obstacle_zone: Box
    construction_zone: Box
    target_box: Box
    berm_size_m: tuple[float, float]
    fiducial_bar: FiducialBar | None
    run_minutes: float
    repose_deg: float = 37.0
    cell_m: float = 0.05
    soil_depth_m: float = 0.4
    keep_out: tuple[Box, ...] = ()
    # the arena is closed by walls on its four sides (the Lunabotics arenas); the rover localizes on them
    walls: bool = False

    @property
    def arena(self) -> Box:
        return Box(0.0, 0.0, self.size_m[0], self.size_m[1])

    def arena_walls(self) -> tuple[WallLine, ...]:
        """The arena's four sides as ``WallLine`` s (normals pointing out of the arena: -y, +x, +y, -x), or none
        when the site has no walls."""
        if not self.walls:
            return ()
        lx, ly = self.size_m
        return (
            WallLine(0, -math.pi / 2, 0.0),
            WallLine(1, 0.0, lx),
            WallLine(2, math.pi / 2, ly),
            WallLine(3, math.pi, 0.0),
        )

    def problems(self) -> list[str]:
        """Inconsistencies of the layout (empty when valid): zones outside the arena, target box outside
        the construction zone, a keep-out box over the start, excavation or target box."""
        out: list[str] = []
        arena = self.arena
        for name in ("start_zone", "excavation_zone", "obstacle_zone", "construction_zone"):
            zone: Box = getattr(self, name)
            if not zone.inside(arena):
                out.append(f"{name} {zone.as_list()} lies outside the site {arena.as_list()}")
        if not self.target_box.inside(self.construction_zone):
            out.append(f"target box {self.target_box.as_list()} lies outside the construction zone")
        for k, box in enumerate(self.keep_out):
            for name in ("start_zone", "excavation_zone", "target_box"):
                if box.overlaps(getattr(self, name)):
                    out.append(f"keep_out[{k}] overlaps the {name.replace('_', ' ')}")
        return out


def _ucf() -> SiteZones:
    length, width = 8.10, 4.57
    return SiteZones(
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
        walls=True,
    )


def _ksc() -> SiteZones:
    length, width = 6.88, 5.0
    return SiteZones(
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
        walls=True,
    )


def _open_site() -> SiteZones:
    size = 40.0
    return SiteZones(
        name="open",
        size_m=(size, size),
        start_zone=Box.centred(20.0, 20.0, 4.0, 4.0),
        excavation_zone=Box.centred(12.0, 20.0, 8.0, 8.0),
        obstacle_zone=Box(2.0, 2.0, 38.0, 38.0),
        construction_zone=Box.centred(28.0, 20.0, 8.0, 8.0),
        target_box=Box.centred(28.0, 20.0, 4.0, 4.0),  # a landing-pad apron
        berm_size_m=(4.0, 1.0),
        fiducial_bar=FiducialBar(18.0, 18.0, 19.5, 18.0, 0.40),
        run_minutes=60.0,
        cell_m=0.1,
    )


PRESET_ZONES: dict[str, SiteZones] = {"ucf": _ucf(), "ksc": _ksc(), "open": _open_site()}
