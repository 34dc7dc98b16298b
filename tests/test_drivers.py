"""Board drivers fail loudly and clearly when their device is missing (never a silent fake)."""

from __future__ import annotations

import pytest

from autonomy.msgs import CameraInfo, Pose3D
from hw.drivers.camera import OpenCvCamera, jetson_csi_pipeline, libcamera_pipeline
from hw.drivers.imu_i2c import Mpu6050, open_i2c_bus
from hw.interfaces import DeviceError


class _Clock:
    def now_s(self) -> float:
        return 1.0

    def sleep_until(self, t_s: float) -> None:
        return None


def test_missing_v4l2_camera_raises_naming_the_device() -> None:
    info = CameraInfo(640, 480, 500.0, 500.0, 320.0, 240.0)
    with pytest.raises(DeviceError, match=r"camera front: cannot open v4l2 source '/dev/video-regolith-missing'"):
        OpenCvCamera("front", "/dev/video-regolith-missing", "v4l2", info, Pose3D(0, 0, 0), _Clock())


def test_gstreamer_pipelines_name_their_sources() -> None:
    assert libcamera_pipeline(640, 480, 30).startswith("libcamerasrc ! video/x-raw,width=640,height=480")
    assert "nvarguscamerasrc sensor-id=0" in jetson_csi_pipeline(1280, 720, 30)
    assert jetson_csi_pipeline(1280, 720, 30).endswith("appsink drop=true max-buffers=1 sync=false")


def test_missing_i2c_bus_raises() -> None:
    with pytest.raises(DeviceError, match=r"IMU: (cannot open I2C bus /dev/i2c-97|smbus2 is not installed)"):
        open_i2c_bus(97)


class _Bus:
    def __init__(self, who: int | None) -> None:
        self.who = who
        self.block = [0] * 14

    def read_byte_data(self, addr: int, reg: int) -> int:
        if self.who is None:
            raise OSError(121, "Remote I/O error")
        return self.who

    def write_byte_data(self, addr: int, reg: int, value: int) -> None:
        return None

    def read_i2c_block_data(self, addr: int, reg: int, length: int) -> list[int]:
        return self.block


def test_imu_absent_or_wrong_chip_raises_and_reads_scale() -> None:
    with pytest.raises(DeviceError, match="IMU at I2C 0x68: no answer"):
        Mpu6050(_Bus(None), _Clock())
    with pytest.raises(DeviceError, match="WHO_AM_I 0x12"):
        Mpu6050(_Bus(0x12), _Clock())
    bus = _Bus(0x68)
    bus.block = [0x40, 0x00, 0, 0, 0, 0, 0, 0, 0, 131, 0, 0, 0, 0]  # ax = +1 g, gx = 131 LSB = 1 deg/s
    r = Mpu6050(bus, _Clock()).read()
    assert r is not None
    assert r.linear_acceleration_mps2[0] == pytest.approx(9.80665)
    assert r.angular_velocity_radps[0] == pytest.approx(0.0174533, rel=1e-4)
