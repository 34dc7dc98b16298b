"""The Lunabotics score: one pure definition for the planner's prediction and the simulator's judge.

Scoring (NASA Lunabotics guidebook, see ``/work/shared/design/domain.md``):
- productivity by mass   = berm cm^3 / run minutes / robot kg x 4.4
- productivity by energy = berm cm^3 / run minutes / Wh used x 1.5
  (worked example: 77,551 cm^3 in 15 min, 66 kg, 36 Wh -> 344.6 + 215.4 points)
- autonomy: excavate 75, dump 50, travel 250 (partial autonomy, summed); full autonomy with one cycle 450,
  with at least two cycles 600; the larger of the two counts.
- penalties: -30 per rock contact or crater crossing in the obstacle zone, capped at -90.
- optional (2026-27 team notes): autonomy points scaled by berm volume, 25,000 cm^3 giving x1.0
  (assumed linear and capped at 1.0; ``autonomy_volume_scaling=True``).
"""

from __future__ import annotations

from dataclasses import dataclass

MASS_FACTOR = 4.4
ENERGY_FACTOR = 1.5
AUTONOMY_EXCAVATE = 75.0
AUTONOMY_DUMP = 50.0
AUTONOMY_TRAVEL = 250.0
AUTONOMY_FULL_ONE_CYCLE = 450.0
AUTONOMY_FULL_TWO_CYCLES = 600.0
PENALTY_PER_CONTACT = 30.0
PENALTY_CAP = 90.0
AUTONOMY_FULL_SCALE_CM3 = 25_000.0


@dataclass(frozen=True, slots=True)
class Autonomy:
    """What ran autonomously: the partial-autonomy tasks, and full cycles (dig, haul, dump, no help)."""

    excavate: bool = False
    dump: bool = False
    travel: bool = False
    full_cycles: int = 0


@dataclass(frozen=True, slots=True)
class ScoreTerms:
    productivity_mass: float
    productivity_energy: float
    autonomy: float
    autonomy_volume_factor: float
    penalties: float
    total: float


def autonomy_points(a: Autonomy) -> float:
    partial = AUTONOMY_EXCAVATE * a.excavate + AUTONOMY_DUMP * a.dump + AUTONOMY_TRAVEL * a.travel
    full = AUTONOMY_FULL_TWO_CYCLES if a.full_cycles >= 2 else AUTONOMY_FULL_ONE_CYCLE if a.full_cycles == 1 else 0.0
    return max(float(partial), full)


def lunabotics_score(
    berm_volume_cm3: float,
    run_minutes: float,
    robot_mass_kg: float,
    energy_wh: float,
    autonomy: Autonomy = Autonomy(),
    contacts: int = 0,
    autonomy_volume_scaling: bool = False,
) -> ScoreTerms:
    """The Lunabotics score terms of one run (see the module docstring)."""
    if not (run_minutes > 0 and robot_mass_kg > 0):
        raise ValueError(
            f"lunabotics_score: run_minutes and robot_mass_kg must be > 0 ({run_minutes}, {robot_mass_kg})"
        )
    if berm_volume_cm3 < 0 or energy_wh < 0 or contacts < 0:
        raise ValueError("lunabotics_score: volume, energy and contacts must be >= 0")
    rate = berm_volume_cm3 / run_minutes
    mass = rate / robot_mass_kg * MASS_FACTOR
    energy = rate / energy_wh * ENERGY_FACTOR if energy_wh > 0 else 0.0
    factor = min(1.0, berm_volume_cm3 / AUTONOMY_FULL_SCALE_CM3) if autonomy_volume_scaling else 1.0
    auto = autonomy_points(autonomy) * factor
    penalties = min(PENALTY_CAP, PENALTY_PER_CONTACT * contacts)
    return ScoreTerms(mass, energy, auto, factor, penalties, mass + energy + auto - penalties)
