"""CameraModel: OpenCV YAML calibration files, CameraInfo, cached undistortion maps."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from autonomy.msgs import CameraInfo
from autonomy.perception.camera import (
    CalibrationError,
    CameraModel,
    load_camera_info_yaml,
    save_camera_info_yaml,
)

INFO = CameraInfo(640, 480, 500.0, 505.0, 320.5, 240.5, (-0.2, 0.05, 0.001, -0.001, 0.0))


def test_yaml_round_trip_written_by_opencv(tmp_path: Path) -> None:
    path = tmp_path / "cam.yaml"
    save_camera_info_yaml(INFO, path)
    assert load_camera_info_yaml(path) == INFO
    assert CameraModel.from_yaml(path).info == INFO


def test_yaml_without_distortion_and_hand_written(tmp_path: Path) -> None:
    path = tmp_path / "cam.yaml"
    path.write_text(
        "%YAML:1.0\n---\nimage_width: 320\nimage_height: 240\n"
        "camera_matrix: !!opencv-matrix\n   rows: 3\n   cols: 3\n   dt: d\n"
        "   data: [ 250., 0., 160., 0., 250., 120., 0., 0., 1. ]\n"
    )
    info = load_camera_info_yaml(path)
    assert (info.width_px, info.height_px, info.fx_px, info.cy_px) == (320, 240, 250.0, 120.0)
    assert not CameraModel(info).has_distortion


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("image_height: 480\n", "image_width"),
        ("image_width: 640\nimage_height: 480\n", "camera_matrix"),
        ("image_width: 640\nimage_height: -1\n", "image_height"),
        (
            "image_width: 640\nimage_height: 480\ncamera_matrix: !!opencv-matrix\n   rows: 2\n   cols: 2\n"
            "   dt: d\n   data: [1., 0., 0., 1.]\n",
            "camera_matrix",
        ),
        (
            "image_width: 640\nimage_height: 480\ncamera_matrix: !!opencv-matrix\n   rows: 3\n   cols: 3\n"
            "   dt: d\n   data: [500., 0., 320., 0., 500., 240., 0., 0., 1.]\n"
            "distortion_coefficients: !!opencv-matrix\n   rows: 1\n   cols: 3\n   dt: d\n   data: [0., 0., 0.]\n",
            "distortion_coefficients",
        ),
    ],
)
def test_yaml_errors_name_file_and_field(tmp_path: Path, body: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("%YAML:1.0\n---\n" + body)
    with pytest.raises(CalibrationError, match=re.escape(f"{path}: {field}:")):
        load_camera_info_yaml(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=r"nope\.yaml: file not found"):
        load_camera_info_yaml(tmp_path / "nope.yaml")


def test_undistort_maps_built_once_and_output_buffer_reused() -> None:
    model = CameraModel(INFO)
    assert not model.maps_built
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    out = np.empty_like(img)
    res = model.undistort(img, out=out)
    assert res is out and model.maps_built
    maps = model._maps
    model.undistort(img, out=out)
    assert model._maps is maps  # cached, not rebuilt
    expected = cv2.undistort(img, INFO.matrix(), np.asarray(INFO.distortion))
    inner = (slice(40, 440), slice(40, 600))
    assert np.mean(np.abs(out[inner].astype(int) - expected[inner].astype(int))) < 2.0


def test_undistort_points_inverts_project() -> None:
    model = CameraModel(INFO)
    pts_cam = np.array([[0.3, -0.2, 1.0], [-0.4, 0.25, 1.2], [0.0, 0.0, 2.0]])
    raw = model.project(pts_cam)
    ideal = model.undistort_points(raw)
    pinhole = (INFO.matrix() @ (pts_cam / pts_cam[:, 2:3]).T).T[:, :2]
    np.testing.assert_allclose(ideal, pinhole, atol=1e-3)


def test_no_distortion_passthrough_and_size_check() -> None:
    model = CameraModel(CameraInfo(64, 48, 50.0, 50.0, 32.0, 24.0))
    img = np.zeros((48, 64), dtype=np.uint8)
    assert model.undistort(img) is img
    with pytest.raises(ValueError, match="image is 32x48"):
        model.undistort(np.zeros((48, 32), dtype=np.uint8))
    rays = model.rays()
    assert rays.shape == (48, 64, 3)
    np.testing.assert_allclose(rays[24, 32], (0.0, 0.0, 1.0))
