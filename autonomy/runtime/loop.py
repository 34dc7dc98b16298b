"""The rover loop (Donkeycar style, explicit): read, step, write, sleep until the next control tick.

The loop owns the control rate; the pipeline runs perception and planning in their own rate groups
inside it. The loop knows its ports only through the structural protocols below, so the same loop
drives a real board (wall clock), the fake backend and the simulator (lockstep: the simulated clock's
``sleep_until`` advances the physics), and ``autonomy`` imports nothing of ``hw`` or ``sim``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from autonomy.msgs import Commands, DriveCommand, RunStatus, SensorFrame
from autonomy.runtime.pipeline import Pipeline


class RoverPort(Protocol):
    """What the loop needs of one rover's hardware (``hw.rover_io.RoverIO`` implements it)."""

    rover_id: str

    def read(self) -> SensorFrame: ...

    def write(self, commands: Commands) -> None: ...


class LoopClock(Protocol):
    def now_s(self) -> float: ...

    def sleep_until(self, t_s: float) -> None: ...


TickObserver = Callable[[SensorFrame, Commands], None]


@dataclass(frozen=True, slots=True)
class LoopResult:
    status: RunStatus
    steps: int
    sim_seconds: float
    reason: str
    overruns: int


class RoverLoop:
    """Runs one rover's pipeline at ``control_hz`` until the mission ends, ``time_limit_s`` passes or
    ``max_steps`` ticks have run. ``observer`` sees every frame and the commands sent (for logs)."""

    def __init__(
        self,
        port: RoverPort,
        clock: LoopClock,
        pipeline: Pipeline,
        control_hz: float = 20.0,
        time_limit_s: float | None = None,
        max_steps: int | None = None,
        observer: TickObserver | None = None,
    ) -> None:
        if not control_hz > 0:
            raise ValueError(f"control_hz must be > 0, got {control_hz}")
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.port = port
        self.clock = clock
        self.pipeline = pipeline
        self.period_s = 1.0 / control_hz
        self.time_limit_s = time_limit_s
        self.max_steps = max_steps
        self.observer = observer

    def run(self) -> LoopResult:
        start_s = self.clock.now_s()
        steps = 0
        overruns = 0
        tick_s = start_s
        status = RunStatus.RUNNING
        reason = ""
        while True:
            frame = self.port.read()
            commands = self.pipeline.step(frame)
            self.port.write(commands)
            if self.observer is not None:
                self.observer(frame, commands)
            steps += 1
            status = self.pipeline.status
            elapsed = frame.stamp_s - start_s
            if status is not RunStatus.RUNNING:
                reason = f"pipeline reported {status.value}"
                break
            if self.time_limit_s is not None and elapsed >= self.time_limit_s:
                status, reason = RunStatus.TIMEOUT, f"time limit {self.time_limit_s:g} s reached"
                break
            if self.max_steps is not None and steps >= self.max_steps:
                reason = f"max_steps {self.max_steps} reached"
                break
            tick_s += self.period_s
            now = self.clock.now_s()
            if now > tick_s:  # the tick took longer than its period: skip ahead, count it
                overruns += 1
                tick_s = now
            self.clock.sleep_until(tick_s)
        # Leave the rover stopped whatever ended the run.
        end_s = self.clock.now_s()
        self.port.write(Commands(self.port.rover_id, DriveCommand.stop(end_s)))
        return LoopResult(status, steps, end_s - start_s, reason, overruns)
