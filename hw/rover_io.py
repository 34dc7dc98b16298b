"""``RoverIO``: one rover's ports bundled, assembled into a ``SensorFrame`` per tick and fed its commands.

This is the thin shell between the hardware ports and the pure pipeline (``autonomy.runtime``): it reads
every port once, stamps the frame with the clock, and writes the commands back. It holds no algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass

from autonomy.msgs import Commands, SensorFrame
from hw.interfaces import Battery, Camera, Clock, DepthSensor, DriveBase, Estop, Imu, Tool, WheelEncoders


@dataclass(slots=True)
class RoverIO:
    rover_id: str
    clock: Clock
    wheels: WheelEncoders
    imu: Imu
    drive: DriveBase
    camera: Camera | None = None
    depth: DepthSensor | None = None
    tool: Tool | None = None
    battery: Battery | None = None
    estop: Estop | None = None

    def read(self) -> SensorFrame:
        return SensorFrame(
            rover_id=self.rover_id,
            stamp_s=self.clock.now_s(),
            wheels=self.wheels.read(),
            imu=self.imu.read(),
            camera=self.camera.read() if self.camera is not None else None,
            depth=self.depth.read() if self.depth is not None else None,
            battery=self.battery.read() if self.battery is not None else None,
            tool=self.tool.read() if self.tool is not None else None,
            estop=self.estop.read() if self.estop is not None else None,
        )

    def write(self, commands: Commands) -> None:
        if commands.rover_id != self.rover_id:
            raise ValueError(f"commands for rover {commands.rover_id!r} sent to rover {self.rover_id!r}")
        self.drive.command(commands.drive)
        if commands.tool is not None and self.tool is not None:
            self.tool.command(commands.tool)
