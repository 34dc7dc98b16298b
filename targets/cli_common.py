"""Pieces every ``rover`` command shares: reading a mission with its problems printed, the progress bar."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from autonomy.mission.mission_file import Mission, MissionError, load_mission

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
Progress = Callable[[float, float], None]


def load_mission_or_report(path: str | Path) -> Mission | None:
    """The mission, or None after printing each problem as ``FILE:LINE: field: reason`` on stderr."""
    try:
        return load_mission(path)
    except MissionError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def require_construction(mission: Mission, path: str | Path, command: str) -> bool:
    """True for a construction mission (structures on a zoned preset); otherwise explain on stderr."""
    if mission.structures and mission.site.zones is not None:
        return True
    print(
        f"{path}:1: structures: `{command}` needs a construction mission (structures and a site preset with "
        "zones: ucf, ksc or open)",
        file=sys.stderr,
    )
    return False


@contextmanager
def sim_progress(mission: Mission, seed: int, quiet: bool) -> Iterator[Progress]:
    """A tqdm bar in simulated seconds up to the mission's time limit; yields the ``progress(sim_s, limit_s)``
    callback the sim runners take."""
    from tqdm import tqdm

    with tqdm(
        total=round(mission.limits.time_s),
        unit="sim s",
        desc=f"{mission.name} seed {seed}",
        disable=quiet,
        file=sys.stderr,
    ) as bar:

        def progress(sim_s: float, limit_s: float) -> None:
            bar.n = min(round(sim_s), bar.total)
            bar.refresh()

        yield progress
