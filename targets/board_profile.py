"""Board profiles (``targets/boards/*.toml``): which drivers a board uses, their devices and rates.

``load_board("rpi4")`` or ``load_board(path)`` returns a frozen ``BoardProfile``; every problem in the file is
reported at once as ``FILE: section.field: reason`` in ``BoardError.problems``. Unknown keys are rejected.
Relative file paths in a profile (``camera.calibration``, a ``file`` camera's ``device``) are relative to the
profile's own folder.

Optional devices are optional only when the profile says so: ``camera.driver = "none"`` (no camera) and
``imu.driver = "none"`` (no IMU: the stack runs, and the pipeline holds the rover still with "stale imu").
The ``file`` camera replays a recording (video file or ``%d`` image sequence) through OpenCV, on the bench.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BOARDS_DIR = Path(__file__).resolve().parent / "boards"
CAMERA_DRIVERS = ("gstreamer-libcamera", "gstreamer-jetson-csi", "v4l2", "file", "sim", "none")
IMU_DRIVERS = ("mpu6050", "sim", "none")
MCU_DRIVERS = ("serial", "sim-firmware", "sim")


class BoardError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class CameraProfile:
    driver: str
    device: str = ""
    width: int = 0
    height: int = 0
    fps: int = 0
    calibration: Path | None = None
    loop: bool = False


@dataclass(frozen=True, slots=True)
class ImuProfile:
    driver: str
    bus: int = 0
    address: int = 0x68


@dataclass(frozen=True, slots=True)
class McuProfile:
    driver: str
    port: str = ""
    baud: int = 1_000_000
    counts_per_rad: float = 1.0


@dataclass(frozen=True, slots=True)
class BoardProfile:
    name: str
    description: str
    source: Path
    control_hz: float
    perception_hz: float
    camera: CameraProfile
    imu: ImuProfile
    mcu: McuProfile
    wheel_radius_m: float
    track_width_m: float

    @property
    def uses_sim(self) -> bool:
        return "sim" in (self.camera.driver, self.imu.driver) or self.mcu.driver in ("sim", "sim-firmware")

    def referenced_files(self) -> list[Path]:
        """Files the profile names (calibration, a recording; for an image sequence its folder), absolute:
        what a deploy must bring along."""
        out = [self.camera.calibration] if self.camera.calibration is not None else []
        if self.camera.driver == "file":
            rec = Path(self.camera.device)
            out.append(rec.parent if "%" in rec.name else rec)
        return out


def board_names() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.toml"))


def board_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml":
        return p
    return BOARDS_DIR / f"{name_or_path}.toml"


class _Section:
    """Typed access to one TOML table, collecting problems instead of stopping at the first."""

    def __init__(self, src: str, name: str, data: Any, problems: list[str], allowed: set[str]) -> None:
        self.src, self.name, self.problems = src, name, problems
        if not isinstance(data, dict):
            problems.append(f"{src}: {name}: missing table [{name}]")
            data = {}
        self.data: dict[str, Any] = data
        for key in sorted(set(data) - allowed):
            problems.append(f"{src}: {name}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")

    def bad(self, key: str, reason: str) -> None:
        self.problems.append(f"{self.src}: {self.name}.{key}: {reason}")

    def str_(self, key: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        v = self.data.get(key, default)
        if v is None:
            self.bad(key, "required")
            return ""
        if not isinstance(v, str) or not v:
            self.bad(key, f"must be a non-empty string, got {v!r}")
            return ""
        if choices and v not in choices:
            self.bad(key, f"{v!r} is not one of {', '.join(choices)}")
        return v

    def num(self, key: str, default: float | None = None, lo: float = 0.0, hi: float = float("inf")) -> float:
        v = self.data.get(key, default)
        if v is None:
            self.bad(key, "required")
            return 1.0
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.bad(key, f"must be a number, got {v!r}")
            return 1.0
        if not lo < v <= hi:
            self.bad(key, f"must be in ({lo:g}, {hi:g}], got {v!r}")
        return float(v)

    def bool_(self, key: str, default: bool) -> bool:
        v = self.data.get(key, default)
        if not isinstance(v, bool):
            self.bad(key, f"must be true or false, got {v!r}")
            return default
        return v

    def int_(self, key: str, default: int | None = None, lo: int = 0, hi: int = 2**31) -> int:
        v = self.data.get(key, default)
        if v is None:
            self.bad(key, "required")
            return 0
        if isinstance(v, bool) or not isinstance(v, int):
            self.bad(key, f"must be an integer, got {v!r}")
            return 0
        if not lo <= v <= hi:
            self.bad(key, f"must be in [{lo}, {hi}], got {v!r}")
        return v


def load_board(name_or_path: str | Path) -> BoardProfile:
    path = board_path(name_or_path)
    src = str(path)
    if not path.is_file():
        raise BoardError([f"{src}: no such board profile (known boards: {', '.join(board_names())})"])
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise BoardError([f"{src}: not valid TOML: {exc}"]) from exc
    problems: list[str] = []
    for key in sorted(set(doc) - {"board", "loop", "camera", "imu", "mcu", "drive"}):
        problems.append(f"{src}: {key}: unknown table")
    b = _Section(src, "board", doc.get("board"), problems, {"name", "description"})
    loop = _Section(src, "loop", doc.get("loop"), problems, {"control_hz", "perception_hz"})
    cam = _Section(
        src,
        "camera",
        doc.get("camera"),
        problems,
        {"driver", "device", "width", "height", "fps", "calibration", "loop"},
    )
    imu = _Section(src, "imu", doc.get("imu"), problems, {"driver", "bus", "address"})
    mcu = _Section(src, "mcu", doc.get("mcu"), problems, {"driver", "port", "baud", "counts_per_rad"})
    drive = _Section(src, "drive", doc.get("drive"), problems, {"wheel_radius_m", "track_width_m"})

    name = b.str_("name")
    if name and name != path.stem:
        b.bad("name", f"{name!r} does not match the file name {path.stem!r}")
    control_hz = loop.num("control_hz", hi=1000.0)
    perception_hz = loop.num("perception_hz", hi=1000.0)
    if perception_hz > control_hz:
        loop.bad("perception_hz", f"{perception_hz:g} Hz is faster than control_hz {control_hz:g} Hz")

    here = path.absolute().parent  # relative paths in the profile are relative to its folder
    cam_driver = cam.str_("driver", choices=CAMERA_DRIVERS)
    camera = CameraProfile(cam_driver)
    if cam_driver not in ("sim", "none", ""):
        calib_rel = cam.str_("calibration")
        calib = (here / calib_rel) if calib_rel else None
        if calib is not None and not calib.is_file():
            cam.bad("calibration", f"file {calib} not found")
        device = cam.str_("device") if cam_driver in ("v4l2", "file") else ""
        if cam_driver == "v4l2" and device and not device.startswith("/dev/"):
            cam.bad("device", f"must be a /dev path, got {device!r}")
        if cam_driver == "file" and device:
            device = str(here / device)
            if "%" not in device and not Path(device).is_file():
                cam.bad("device", f"recording {device} not found")
        loop_rec = cam.bool_("loop", False)
        if loop_rec and cam_driver != "file":
            cam.bad("loop", f"only a 'file' camera can loop, driver is {cam_driver!r}")
        camera = CameraProfile(
            cam_driver,
            device,
            cam.int_("width", lo=16, hi=8192),
            cam.int_("height", lo=16, hi=8192),
            cam.int_("fps", lo=1, hi=1000),
            calib,
            loop_rec,
        )
    imu_driver = imu.str_("driver", choices=IMU_DRIVERS)
    imu_p = ImuProfile(imu_driver)
    if imu_driver == "mpu6050":
        imu_p = ImuProfile(imu_driver, imu.int_("bus", lo=0, hi=255), imu.int_("address", lo=0x03, hi=0x77))
    mcu_driver = mcu.str_("driver", choices=MCU_DRIVERS)
    mcu_p = McuProfile(mcu_driver)
    if mcu_driver in ("serial", "sim-firmware"):
        port = mcu.str_("port") if mcu_driver == "serial" else ""
        if port and not port.startswith("/dev/"):
            mcu.bad("port", f"must be a /dev path, got {port!r}")
        mcu_p = McuProfile(
            mcu_driver, port, mcu.int_("baud", 1_000_000, lo=9600, hi=12_000_000), mcu.num("counts_per_rad", 95.5)
        )
    wheel_radius = drive.num("wheel_radius_m", hi=2.0)
    track = drive.num("track_width_m", hi=5.0)
    if problems:
        raise BoardError(problems)
    return BoardProfile(
        name,
        str(b.data.get("description", "")),
        path,
        control_hz,
        perception_hz,
        camera,
        imu_p,
        mcu_p,
        wheel_radius,
        track,
    )


def load_calibration(path: Path) -> dict[str, Any]:
    """Camera intrinsics and mount (TOML); see ``targets/boards/calibration/*.toml``."""
    src = str(path)
    doc = tomllib.loads(path.read_text())
    problems = [f"{src}: {k}: required" for k in ("width", "height", "fx", "fy", "cx", "cy", "mount") if k not in doc]
    if problems:
        raise BoardError(problems)
    return doc
