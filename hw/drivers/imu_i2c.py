"""MPU-6050 / MPU-6500 IMU over I2C (smbus2). The bus is passed in (testable); ``open_i2c_bus`` opens a
real one and fails with ``DeviceError`` when the bus or the chip is missing."""

from __future__ import annotations

import math
import struct
from typing import Protocol

from autonomy.msgs import ImuReading
from hw.interfaces import Clock, DeviceError

REG_PWR_MGMT_1 = 0x6B
REG_WHO_AM_I = 0x75
REG_ACCEL_XOUT_H = 0x3B
WHO_AM_I_VALUES = {0x68: "MPU-6050", 0x70: "MPU-6500", 0x71: "MPU-9250"}
ACCEL_LSB_PER_G = 16384.0  # +-2 g
GYRO_LSB_PER_DPS = 131.0  # +-250 deg/s
G_MPS2 = 9.80665


class I2cBus(Protocol):
    def read_byte_data(self, addr: int, reg: int) -> int: ...

    def write_byte_data(self, addr: int, reg: int, value: int) -> None: ...

    def read_i2c_block_data(self, addr: int, reg: int, length: int) -> list[int]: ...


def open_i2c_bus(bus: int) -> I2cBus:
    try:
        from smbus2 import SMBus
    except ImportError as exc:
        raise DeviceError("IMU: smbus2 is not installed (pip install 'regolith[board]')") from exc
    try:
        opened: I2cBus = SMBus(bus)
    except OSError as exc:
        raise DeviceError(f"IMU: cannot open I2C bus /dev/i2c-{bus}: {exc} (enable I2C on the board)") from exc
    return opened


class Mpu6050:
    """``Imu`` port. Axes are mapped into ``base_link`` by the profile's ``axes`` (signed permutation)."""

    def __init__(self, bus: I2cBus, clock: Clock, address: int = 0x68) -> None:
        self.bus = bus
        self.clock = clock
        self.address = address
        try:
            who = bus.read_byte_data(address, REG_WHO_AM_I)
            if who not in WHO_AM_I_VALUES:
                raise DeviceError(f"IMU at I2C 0x{address:02x}: WHO_AM_I 0x{who:02x}, not an MPU-6050/6500/9250")
            bus.write_byte_data(address, REG_PWR_MGMT_1, 0x01)  # wake, PLL on gyro X
        except OSError as exc:
            raise DeviceError(f"IMU at I2C 0x{address:02x}: no answer ({exc}); check wiring and address") from exc

    def read(self) -> ImuReading | None:
        try:
            raw = bytes(self.bus.read_i2c_block_data(self.address, REG_ACCEL_XOUT_H, 14))
        except OSError as exc:
            raise DeviceError(f"IMU at I2C 0x{self.address:02x}: read failed ({exc})") from exc
        ax, ay, az, _temp, gx, gy, gz = struct.unpack(">hhhhhhh", raw)
        acc = (ax / ACCEL_LSB_PER_G * G_MPS2, ay / ACCEL_LSB_PER_G * G_MPS2, az / ACCEL_LSB_PER_G * G_MPS2)
        k = math.radians(1.0) / GYRO_LSB_PER_DPS
        return ImuReading(self.clock.now_s(), (gx * k, gy * k, gz * k), acc)
