"""The judge bound to a live ``World``: ``RunJudge(world)`` at the start of a run takes the "before" scan and
records every rover's true path and rock contacts; ``finish()`` takes the "after" scan and judges the run.
Works for any world; without a site (no target box) the berm volume is 0 and the obstacle zone is the
whole terrain."""

from __future__ import annotations

from sim.backend import SimRover
from sim.judge import Autonomy, ContactEvent, JudgeReport, judge_run
from sim.sites import Box
from sim.world import World


def rock_contacts(world: World, rover: SimRover) -> list[ContactEvent]:
    """Contacts between the rover and any rock now (one event per touching rock)."""
    pose = rover.true_pose()
    return [
        ContactEvent(world.time_s, rover.rover_id, rock.body_id, pose.x_m, pose.y_m)
        for rock in world.rocks
        if world.client.getContactPoints(rover.body_id, rock.body_id)
    ]


class RunRecorder:
    """Records a rover's true path and its rock contacts every ``every`` physics steps (a step hook)."""

    def __init__(self, world: World, rover: SimRover, every: int = 12) -> None:
        if every < 1:
            raise ValueError(f"RunRecorder: every must be >= 1, got {every}")
        self.world = world
        self.rover = rover
        self.every = every
        self.events: list[ContactEvent] = []
        self.path: list[tuple[float, float]] = []
        rover.step_hooks.append(self._hook)

    def _hook(self, now_s: float) -> None:
        if self.world.steps % self.every == 0:
            self.events.extend(rock_contacts(self.world, self.rover))
            pose = self.rover.true_pose()
            self.path.append((pose.x_m, pose.y_m))


def cycles_from_dumps(rover: SimRover, target_box: Box, min_volume_m3: float = 0.002) -> int:
    """Completed dig-haul-dump cycles: dumps of at least ``min_volume_m3`` landing in the target box."""
    return sum(1 for _t, x, y, vol in rover.dump_log if vol >= min_volume_m3 and target_box.contains(x, y))


class RunJudge:
    """Judge a run of ``world`` (create it after the rovers are added, before the run starts)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.before = world.elevation_scan()
        self.recorders = {rid: RunRecorder(world, r) for rid, r in world.rovers.items()}
        self.energy_start_wh = {rid: r.energy_used_wh for rid, r in world.rovers.items()}

    def finish(self, autonomous: bool = True, run_minutes: float | None = None) -> JudgeReport:
        """Judge now. ``autonomous``: the cycles counted ran without help (full-autonomy points);
        ``run_minutes``: the run's length for productivity (default: the site's, else the time elapsed)."""
        w = self.world
        site = w.site
        arena = Box(
            w.center_xy[0] - w.size_m[0] / 2,
            w.center_xy[1] - w.size_m[1] / 2,
            w.center_xy[0] + w.size_m[0] / 2,
            w.center_xy[1] + w.size_m[1] / 2,
        )
        target = site.preset.target_box if site is not None else None
        zone = site.preset.obstacle_zone if site is not None else arena
        craters = site.craters if site is not None else ()
        minutes = run_minutes
        if minutes is None:
            minutes = site.preset.run_minutes if site is not None else max(w.time_s / 60.0, 1e-6)
        rovers = w.rovers
        cycles = sum(cycles_from_dumps(r, target) for r in rovers.values()) if target is not None else 0
        energy = sum(r.energy_used_wh - self.energy_start_wh.get(rid, 0.0) for rid, r in rovers.items())
        mass = sum(r.mass_kg for r in rovers.values()) or 1.0
        events = [e for rec in self.recorders.values() for e in rec.events]
        path = [xy for rec in self.recorders.values() for xy in rec.path]
        after = w.elevation_scan()
        autonomy = Autonomy(full_cycles=cycles) if autonomous else Autonomy()
        return judge_run(
            self.before,
            after,
            target
            if target is not None
            else Box(arena.x_min_m, arena.y_min_m, arena.x_min_m + 1e-6, arena.y_min_m + 1e-6),
            zone,
            craters,
            events,
            path,
            energy,
            minutes,
            mass,
            autonomy,
            cycles_completed=cycles,
        )
