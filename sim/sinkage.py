"""Wheel sinkage in soft regolith: Bekker's pressure-sinkage law for a rigid wheel, as a load- and
soil-dependent rolling (compaction) resistance.

Soil (per site, ``SitePreset.bearing``; None = firm ground, no sinkage): pressure under a plate of width b
at sinkage z is p = (k_c / b + k_phi) z^n.

A rigid wheel of diameter D and width b carrying load W (N) then sinks (Bekker 1969, small sinkage)

    z0 = [3 W / ((3 - n) (k_c + b k_phi) sqrt(D))]^(2 / (2 n + 1))

and the soil it compacts resists rolling with the force (the work of pressing a rut of depth z0)

    R_c = b (k_c / b + k_phi) z0^(n + 1) / (n + 1) = (k_c + b k_phi) z0^(n + 1) / (n + 1).

In the simulation each wheel gets R_c at its contact point, opposite its ground velocity (faded in below
``_FADE_SPEED_MPS`` so a parked rover does not jitter); W is the static share of the rover's weight
(payload included) per wheel. The motors (velocity control) must push against it: the same command then
costs more energy (metered from |torque x speed|), and the extra wheel torque shows as more slip (the
rover gets less far for the same wheel turns). The wheels do not visibly sink: their collision spheres keep
their radius (``SimRover.wheel_sinkage()`` reports z0).

Parameters: Apollo-era lunar regolith (Carrier, Olhoeft & Mendell 1991, Lunar Sourcebook ch. 9):
n = 1, k_c = 1.4 kN/m^2, k_phi = 820 kN/m^3 (the undisturbed surface). Loose, freshly dug or dumped
regolith is far softer; ``LOOSE_REGOLITH`` takes k_phi an order of magnitude lower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_FADE_SPEED_MPS = 0.02


@dataclass(frozen=True, slots=True)
class SoilBearing:
    """Bekker soil parameters: cohesive modulus ``k_c`` (N/m^(n+1)), frictional modulus ``k_phi``
    (N/m^(n+2)), sinkage exponent ``n`` (dimensionless)."""

    name: str
    k_c: float
    k_phi: float
    n: float = 1.0

    def __post_init__(self) -> None:
        if not (self.k_c >= 0 and self.k_phi >= 0 and self.k_c + self.k_phi > 0):
            raise ValueError(f"SoilBearing {self.name}: need k_c >= 0, k_phi >= 0, not both 0")
        if not 0.0 < self.n < 3.0:
            raise ValueError(f"SoilBearing {self.name}: n must be in (0, 3), got {self.n}")


LUNAR_REGOLITH = SoilBearing("lunar-regolith", k_c=1.4e3, k_phi=820e3, n=1.0)
LOOSE_REGOLITH = SoilBearing("loose-regolith", k_c=1.4e3, k_phi=82e3, n=1.0)


def wheel_sinkage(load_n: float, width_m: float, diameter_m: float, soil: SoilBearing) -> tuple[float, float]:
    """(static sinkage z0 in m, compaction resistance R_c in N) of a rigid wheel (module docstring)."""
    if not (load_n >= 0 and width_m > 0 and diameter_m > 0):
        raise ValueError(
            f"wheel_sinkage: need load >= 0, width > 0, diameter > 0; got {load_n}, {width_m}, {diameter_m}"
        )
    if load_n == 0:
        return 0.0, 0.0
    n = soil.n
    modulus = soil.k_c + width_m * soil.k_phi
    z0 = (3.0 * load_n / ((3.0 - n) * modulus * math.sqrt(diameter_m))) ** (2.0 / (2.0 * n + 1.0))
    resistance = modulus * z0 ** (n + 1.0) / (n + 1.0)
    return z0, resistance


def resistance_force(resistance_n: float, vx_mps: float, vy_mps: float) -> tuple[float, float]:
    """The horizontal (x, y) resistance on a wheel moving at (vx, vy): ``resistance_n`` opposite the
    motion, scaled down linearly below ``_FADE_SPEED_MPS``."""
    speed = math.hypot(vx_mps, vy_mps)
    if speed < 1e-9:
        return 0.0, 0.0
    scale = resistance_n * min(1.0, speed / _FADE_SPEED_MPS) / speed
    return -vx_mps * scale, -vy_mps * scale
