"""The automatic judge: berm volume above grade in the target box, obstacle contacts and crater crossings,
full autonomous cycles, energy, and the Lunabotics score terms (pure numpy; no pybullet).

Scoring: the Lunabotics guidebook terms, defined once in ``autonomy.construction.scoring`` (re-exported here).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from autonomy.construction.scoring import (  # re-exported: the judge scores with the one definition
    Autonomy,
    ScoreTerms,
    autonomy_points,
    lunabotics_score,
)
from sim.sites import Box, Crater

__all__ = ["Autonomy", "ScoreTerms", "autonomy_points", "lunabotics_score"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ElevationScan:
    """A height grid (m, ``map`` z) of posts ``origin + (ix cell_x, iy cell_y)``; rows are y."""

    heights_m: FloatArray
    origin_xy: tuple[float, float]
    cell_xy_m: tuple[float, float]

    def __post_init__(self) -> None:
        h = np.asarray(self.heights_m)
        if h.ndim != 2 or not np.all(np.isfinite(h)):
            raise ValueError(f"ElevationScan: heights must be a finite 2-D grid, got shape {h.shape}")
        if not (self.cell_xy_m[0] > 0 and self.cell_xy_m[1] > 0):
            raise ValueError(f"ElevationScan: cell sizes must be > 0, got {self.cell_xy_m}")

    def box_mask(self, box: Box) -> npt.NDArray[np.bool_]:
        """Posts inside ``box`` (a post stands for the cell centred on it)."""
        ny, nx = self.heights_m.shape
        x = self.origin_xy[0] + np.arange(nx) * self.cell_xy_m[0]
        y = self.origin_xy[1] + np.arange(ny) * self.cell_xy_m[1]
        inx = (x >= box.x_min_m) & (x <= box.x_max_m)
        iny = (y >= box.y_min_m) & (y <= box.y_max_m)
        return np.asarray(iny[:, None] & inx[None, :])

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path, heights_m=self.heights_m, origin_xy=np.array(self.origin_xy), cell_xy_m=np.array(self.cell_xy_m)
        )

    @classmethod
    def load(cls, path: Path) -> ElevationScan:
        with np.load(path) as z:
            o = z["origin_xy"]
            c = z["cell_xy_m"]
            return cls(
                np.asarray(z["heights_m"], dtype=np.float64), (float(o[0]), float(o[1])), (float(c[0]), float(c[1]))
            )


def berm_volume_m3(before: ElevationScan, after: ElevationScan, box: Box) -> float:
    """Volume (m^3) above grade inside ``box``: the sum over posts in the box of max(after - before, 0)
    times the cell area. Digging inside the box does not count against the berm."""
    if before.heights_m.shape != after.heights_m.shape or before.cell_xy_m != after.cell_xy_m:
        raise ValueError("berm_volume_m3: before and after scans must share their grid")
    if before.origin_xy != after.origin_xy:
        raise ValueError("berm_volume_m3: before and after scans must share their origin")
    mask = before.box_mask(box)
    rise = np.maximum(after.heights_m - before.heights_m, 0.0)
    return float(np.sum(rise[mask])) * before.cell_xy_m[0] * before.cell_xy_m[1]


@dataclass(frozen=True, slots=True)
class ContactEvent:
    """A rover touched an obstacle (a rock) at ``stamp_s``; ``obstacle_id`` identifies the obstacle."""

    stamp_s: float
    rover_id: str
    obstacle_id: int
    x_m: float
    y_m: float


def count_contacts(events: Iterable[ContactEvent], zone: Box, gap_s: float = 1.0) -> int:
    """Rock contacts in ``zone``: touching the same obstacle again within ``gap_s`` of the previous touch is
    the same contact (physics reports a contact every step while it lasts)."""
    last: dict[tuple[str, int], float] = {}
    count = 0
    for ev in sorted(events, key=lambda e: e.stamp_s):
        if not zone.contains(ev.x_m, ev.y_m):
            continue
        key = (ev.rover_id, ev.obstacle_id)
        prev = last.get(key)
        if prev is None or ev.stamp_s - prev > gap_s:
            count += 1
        last[key] = ev.stamp_s
    return count


def count_crater_crossings(path_xy: npt.ArrayLike, craters: Sequence[Crater], zone: Box) -> int:
    """Times the rover's reference point (its path, N x 2) enters a crater's rim circle inside ``zone``."""
    pts = np.asarray(path_xy, dtype=np.float64).reshape(-1, 2)
    if pts.shape[0] == 0:
        return 0
    total = 0
    for c in craters:
        if not zone.contains(c.x_m, c.y_m):
            continue
        inside = np.hypot(pts[:, 0] - c.x_m, pts[:, 1] - c.y_m) <= c.diameter_m / 2
        total += int(inside[0]) + int(np.count_nonzero(inside[1:] & ~inside[:-1]))
    return total


@dataclass(frozen=True, slots=True)
class JudgeReport:
    berm_volume_cm3: float
    contacts: int
    rock_contacts: int
    crater_crossings: int
    cycles_completed: int
    energy_wh: float
    score: ScoreTerms
    notes: tuple[str, ...] = field(default=())

    def summary_fields(self) -> dict[str, Any]:
        """The fields for ``summary.json``."""
        return {
            "berm_volume_cm3": round(self.berm_volume_cm3, 1),
            "contacts": self.contacts,
            "cycles_completed": self.cycles_completed,
            "energy_wh": round(self.energy_wh, 4),
            "score": {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self.score).items()}
            | {"rock_contacts": self.rock_contacts, "crater_crossings": self.crater_crossings},
        }


def judge_run(
    before: ElevationScan,
    after: ElevationScan,
    target_box: Box | None,
    obstacle_zone: Box,
    craters: Sequence[Crater],
    contact_events: Iterable[ContactEvent],
    path_xy: npt.ArrayLike,
    energy_wh: float,
    run_minutes: float,
    robot_mass_kg: float,
    autonomy: Autonomy = Autonomy(),
    autonomy_volume_scaling: bool = False,
    cycles_completed: int | None = None,
) -> JudgeReport:
    """Judge one run from its before/after scans, contact events, true path and energy. ``target_box``
    None: no berm target (volume 0). ``cycles_completed``: dig-haul-dump cycles done, autonomous or not
    (default: ``autonomy.full_cycles``)."""
    vol_cm3 = berm_volume_m3(before, after, target_box) * 1e6 if target_box is not None else 0.0
    rocks = count_contacts(contact_events, obstacle_zone)
    crossings = count_crater_crossings(path_xy, craters, obstacle_zone)
    contacts = rocks + crossings
    score = lunabotics_score(
        vol_cm3, run_minutes, robot_mass_kg, energy_wh, autonomy, contacts, autonomy_volume_scaling
    )
    notes = () if math.isfinite(vol_cm3) else ("volume not finite",)
    cycles = autonomy.full_cycles if cycles_completed is None else cycles_completed
    return JudgeReport(vol_cm3, contacts, rocks, crossings, cycles, energy_wh, score, notes)
