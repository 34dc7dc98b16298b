"""Camera model: intrinsics and distortion, loaded from OpenCV YAML or built from ``CameraInfo``.

``CameraModel`` holds the pinhole matrix K (px) and OpenCV's distortion coefficients (k1, k2, p1, p2[, k3,
...]). Undistortion/rectification maps (``cv2.initUndistortRectifyMap``) are built lazily on the first
``undistort`` call and then reused: nothing per-frame except the ``cv2.remap`` itself, which can also write
into a caller-supplied output buffer.

Calibration files are OpenCV ``FileStorage`` YAML as written by ``cv2.FileStorage`` or the
``calibrateCamera`` samples::

    %YAML:1.0
    image_width: 640
    image_height: 480
    camera_matrix: !!opencv-matrix {rows: 3, cols: 3, dt: d, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
    distortion_coefficients: !!opencv-matrix {rows: 1, cols: 5, dt: d, data: [k1, k2, p1, p2, k3]}

``distortion_coefficients`` may be omitted (no distortion); ``image_width``/``image_height`` are required.
Every error names the file and the field.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from autonomy.msgs import CameraInfo

FloatArray = npt.NDArray[np.float64]
UInt8Array = npt.NDArray[np.uint8]


class CalibrationError(ValueError):
    """A calibration file is missing, unreadable or has a bad field (message: ``FILE: field: reason``)."""


class CameraModel:
    """Pinhole intrinsics + OpenCV distortion, with cached undistortion maps.

    ``undistort`` maps a raw image to the ideal pinhole image with the same K (``new_matrix`` = K), so
    pixel coordinates in the undistorted image use ``matrix``'s focal lengths and principal point.
    """

    def __init__(self, info: CameraInfo) -> None:
        dist = np.asarray(info.distortion, dtype=np.float64).reshape(-1)
        if dist.size not in (0, 4, 5, 8, 12, 14):
            raise ValueError(f"CameraModel: distortion must have 0, 4, 5, 8, 12 or 14 coefficients, got {dist.size}")
        if not np.all(np.isfinite(dist)):
            raise ValueError(f"CameraModel: distortion must be finite, got {tuple(dist)}")
        self._info = info
        self._matrix = info.matrix()
        self._distortion = dist
        self._maps: tuple[npt.NDArray[np.int16], npt.NDArray[np.uint16]] | None = None

    @classmethod
    def from_camera_info(cls, info: CameraInfo) -> CameraModel:
        return cls(info)

    @classmethod
    def from_yaml(cls, path: str | Path) -> CameraModel:
        return cls(load_camera_info_yaml(path))

    @property
    def info(self) -> CameraInfo:
        return self._info

    @property
    def matrix(self) -> FloatArray:
        return self._matrix.copy()

    @property
    def distortion(self) -> FloatArray:
        return self._distortion.copy()

    @property
    def has_distortion(self) -> bool:
        return bool(np.any(self._distortion != 0.0))

    @property
    def maps_built(self) -> bool:
        return self._maps is not None

    def _undistort_maps(self) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.uint16]]:
        if self._maps is None:
            size = (self._info.width_px, self._info.height_px)
            m1, m2 = cv2.initUndistortRectifyMap(self._matrix, self._distortion, None, self._matrix, size, cv2.CV_16SC2)
            self._maps = (np.asarray(m1, dtype=np.int16), np.asarray(m2, dtype=np.uint16))
        return self._maps

    def undistort(self, image: UInt8Array, out: UInt8Array | None = None) -> UInt8Array:
        """Undistorted copy of ``image`` (H x W or H x W x C uint8); written into ``out`` when given.

        Without distortion the image is returned as is (or copied into ``out``).
        """
        shape = image.shape
        if (shape[1], shape[0]) != (self._info.width_px, self._info.height_px):
            raise ValueError(
                f"CameraModel.undistort: image is {shape[1]}x{shape[0]}, calibration is "
                f"{self._info.width_px}x{self._info.height_px}"
            )
        if out is not None and (out.shape != shape or out.dtype != image.dtype):
            raise ValueError(f"CameraModel.undistort: out must be {shape} {image.dtype}, got {out.shape} {out.dtype}")
        if not self.has_distortion:
            if out is None:
                return image
            np.copyto(out, image)
            return out
        m1, m2 = self._undistort_maps()
        if out is None:
            return np.asarray(cv2.remap(image, m1, m2, cv2.INTER_LINEAR), dtype=np.uint8)
        cv2.remap(image, m1, m2, cv2.INTER_LINEAR, dst=out)
        return out

    def undistort_points(self, points_px: FloatArray) -> FloatArray:
        """Raw pixel coordinates (..., 2) -> ideal pinhole pixel coordinates (..., 2) with the same K."""
        pts = np.asarray(points_px, dtype=np.float64)
        if not self.has_distortion:
            return pts.copy()
        flat = np.ascontiguousarray(pts.reshape(-1, 1, 2))
        und = cv2.undistortPoints(flat, self._matrix, self._distortion, P=self._matrix)
        return np.asarray(und, dtype=np.float64).reshape(pts.shape)

    def project(self, points_cam: FloatArray) -> FloatArray:
        """Points in ``camera_optical`` (n, 3), z > 0 -> raw (distorted) pixel coordinates (n, 2)."""
        pts = np.ascontiguousarray(np.asarray(points_cam, dtype=np.float64).reshape(-1, 1, 3))
        zero = np.zeros(3, dtype=np.float64)
        px, _ = cv2.projectPoints(pts, zero, zero, self._matrix, self._distortion)
        return np.asarray(px, dtype=np.float64).reshape(-1, 2)

    def rays(self) -> FloatArray:
        """Per-pixel (H, W, 3) ray direction (x/z, y/z, 1) in ``camera_optical`` of each *undistorted* pixel.

        Built once per call; callers that need it every frame (e.g. depth back-projection) should keep it.
        """
        w, h = self._info.width_px, self._info.height_px
        u = (np.arange(w, dtype=np.float64) - self._info.cx_px) / self._info.fx_px
        v = (np.arange(h, dtype=np.float64) - self._info.cy_px) / self._info.fy_px
        out = np.empty((h, w, 3), dtype=np.float64)
        out[..., 0] = u[None, :]
        out[..., 1] = v[:, None]
        out[..., 2] = 1.0
        return out


def _read_int(fs: cv2.FileStorage, path: str, field: str) -> int:
    node = fs.getNode(field)
    if node.empty() or node.isNone():
        raise CalibrationError(f"{path}: {field}: missing")
    if not node.isInt():
        raise CalibrationError(f"{path}: {field}: must be an integer")
    value = int(node.real())
    if value <= 0:
        raise CalibrationError(f"{path}: {field}: must be > 0, got {value}")
    return value


def _read_matrix(fs: cv2.FileStorage, path: str, field: str, required: bool) -> FloatArray | None:
    node = fs.getNode(field)
    if node.empty() or node.isNone():
        if required:
            raise CalibrationError(f"{path}: {field}: missing")
        return None
    mat = node.mat()
    if mat is None:
        raise CalibrationError(f"{path}: {field}: not an !!opencv-matrix")
    arr = np.asarray(mat, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise CalibrationError(f"{path}: {field}: contains non-finite values")
    return arr


def load_camera_info_yaml(path: str | Path) -> CameraInfo:
    """``CameraInfo`` from an OpenCV FileStorage YAML calibration file (format in the module docstring)."""
    p = Path(path)
    name = str(p)
    if not p.is_file():
        raise CalibrationError(f"{name}: file not found")
    try:
        fs = cv2.FileStorage(name, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_FORMAT_YAML)
    except cv2.error as exc:
        raise CalibrationError(
            f"{name}: not a readable OpenCV YAML file ({str(exc).strip().splitlines()[-1]})"
        ) from exc
    if not fs.isOpened():
        raise CalibrationError(f"{name}: not a readable OpenCV YAML file")
    try:
        width = _read_int(fs, name, "image_width")
        height = _read_int(fs, name, "image_height")
        k = _read_matrix(fs, name, "camera_matrix", required=True)
        if k is None or k.shape != (3, 3):
            raise CalibrationError(f"{name}: camera_matrix: must be 3x3, got {None if k is None else k.shape}")
        if abs(k[0, 1]) > 1e-9 or abs(k[1, 0]) > 1e-9 or np.any(np.abs(k[2] - (0.0, 0.0, 1.0)) > 1e-9):
            raise CalibrationError(f"{name}: camera_matrix: must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]")
        fx, fy, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
        if not (fx > 0.0 and fy > 0.0):
            raise CalibrationError(f"{name}: camera_matrix: focal lengths must be > 0, got fx={fx}, fy={fy}")
        if not (math.isfinite(cx) and math.isfinite(cy) and 0.0 <= cx <= width and 0.0 <= cy <= height):
            raise CalibrationError(f"{name}: camera_matrix: principal point ({cx}, {cy}) outside {width}x{height}")
        d = _read_matrix(fs, name, "distortion_coefficients", required=False)
        dist: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
        if d is not None:
            flat = d.reshape(-1)
            if flat.size not in (4, 5, 8, 12, 14):
                raise CalibrationError(
                    f"{name}: distortion_coefficients: need 4, 5, 8, 12 or 14 values, got {flat.size}"
                )
            dist = tuple(float(x) for x in flat)
    finally:
        fs.release()
    return CameraInfo(width_px=width, height_px=height, fx_px=fx, fy_px=fy, cx_px=cx, cy_px=cy, distortion=dist)


def save_camera_info_yaml(info: CameraInfo, path: str | Path) -> None:
    """Write ``info`` as OpenCV FileStorage YAML (readable by ``load_camera_info_yaml`` and OpenCV tools)."""
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE | cv2.FILE_STORAGE_FORMAT_YAML)
    try:
        fs.write("image_width", int(info.width_px))
        fs.write("image_height", int(info.height_px))
        fs.write("camera_matrix", info.matrix())
        fs.write("distortion_coefficients", np.asarray(info.distortion, dtype=np.float64).reshape(1, -1))
    finally:
        fs.release()
