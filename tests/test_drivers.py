"""Board drivers fail loudly and clearly when their device is missing (never a silent fake)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def _video(path: Path, frames: int) -> Path:
    cv2 = pytest.importorskip("cv2")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write MJPG video (FFmpeg)")
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 40 * (i + 1), np.uint8))
    writer.release()
    return path


def test_file_camera_replays_a_recording_and_ends_loudly(tmp_path: Path) -> None:
    info = CameraInfo(64, 48, 50.0, 50.0, 32.0, 24.0)
    video = str(_video(tmp_path / "drive.avi", 3))
    cam = OpenCvCamera("front", video, "file", info, Pose3D(0, 0, 0), _Clock())
    levels = []
    for _ in range(3):
        frame = cam.read()
        assert frame is not None and frame.image_bgr.shape == (48, 64, 3)
        levels.append(int(frame.image_bgr[24, 32, 0]))
    assert levels[0] < levels[1] < levels[2]  # the frames in order
    with pytest.raises(DeviceError, match=r"end of the recording .* after 3 frames \(set camera.loop = true"):
        cam.read()
    looping = OpenCvCamera("front", video, "file", info, Pose3D(0, 0, 0), _Clock(), loop=True)
    again = [int(f.image_bgr[24, 32, 0]) for f in (looping.read() for _ in range(4)) if f is not None]
    assert again[3] == again[0]
    wrong = CameraInfo(640, 480, 500.0, 500.0, 320.0, 240.0)
    with pytest.raises(DeviceError, match="got 64x48, calibration is for 640x480"):
        OpenCvCamera("front", video, "file", wrong, Pose3D(0, 0, 0), _Clock()).read()


def test_file_camera_missing_recording_or_sequence_raises(tmp_path: Path) -> None:
    info = CameraInfo(64, 48, 50.0, 50.0, 32.0, 24.0)
    with pytest.raises(DeviceError, match=r"camera front: recording '.*none.avi' not found"):
        OpenCvCamera("front", str(tmp_path / "none.avi"), "file", info, Pose3D(0, 0, 0), _Clock())
    with pytest.raises(DeviceError, match=r"image sequence '.*f%04d.png': no"):
        OpenCvCamera("front", str(tmp_path / "f%04d.png"), "file", info, Pose3D(0, 0, 0), _Clock())
    (tmp_path / "garbage.avi").write_bytes(b"not a video")
    with pytest.raises(DeviceError, match="OpenCV cannot decode"):
        OpenCvCamera("front", str(tmp_path / "garbage.avi"), "file", info, Pose3D(0, 0, 0), _Clock())
