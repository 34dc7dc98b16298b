"""FiducialDetector on synthetic images: AprilTag 36h11 tags rendered at known poses.

Rendering: ``cv2.aruco.generateImageMarker`` gives the 8x8-module tag (black border included); a white
quiet zone of one module is added; the tag plane's four outer border corners are projected with
``cv2.projectPoints`` and the tag image is warped with the homography between them, at 4x supersampling
and box-filtered down (anti-aliased edges), over a textured grey background, blurred by a small Gaussian
point-spread function (0.5 px) and with Gaussian pixel noise.
With lens distortion the undistorted rendering is remapped through the distortion model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from autonomy.msgs import CameraFrame, CameraInfo, Pose3D
from autonomy.perception.fiducials import (
    FiducialDetector,
    align_to_template,
    decode_tag36h11,
    find_tag_quads,
    plausible_tag_quads,
    pose3d_from_matrix,
    real_camera_fiducial_detector,
    refine_corners_by_edges,
    refine_tag_pose,
    rotation_to_rpy,
    tag_signed_distance,
    tag_template,
    warm_up,
)

FloatArray = npt.NDArray[np.float64]
DICT = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
INFO = CameraInfo(640, 480, 500.0, 500.0, 319.5, 239.5)
# camera_optical axes in base_link for a camera looking straight ahead: z_c = x_b, x_c = -y_b, y_c = -z_b
R_FORWARD = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def rot_y(a: float) -> FloatArray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(a: float) -> FloatArray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def mount_pose(x: float, y: float, z: float, pitch_down_rad: float = 0.0, yaw_rad: float = 0.0) -> Pose3D:
    """camera_optical in base_link for a camera at (x, y, z), turned by yaw and pitched down."""
    r = rot_z(yaw_rad) @ rot_y(pitch_down_rad) @ R_FORWARD
    roll, pitch, yaw = (float(v) for v in _rpy(r))
    pose = Pose3D(x, y, z, roll, pitch, yaw)
    np.testing.assert_allclose(pose.rotation(), r, atol=1e-12)  # the helper below agrees with msgs
    return pose


def _rpy(r: FloatArray) -> FloatArray:
    """Independent ZYX extraction (away from gimbal lock), checked against Pose3D.rotation()."""
    return np.array([math.atan2(r[2, 1], r[2, 2]), -math.asin(r[2, 0]), math.atan2(r[1, 0], r[0, 0])])


def vertical_tag_rotation(facing_yaw_rad: float) -> FloatArray:
    """Tag axes in base_link for a vertical tag whose face normal points along ``facing_yaw_rad``."""
    z = np.array([math.cos(facing_yaw_rad), math.sin(facing_yaw_rad), 0.0])
    y = np.array([0.0, 0.0, 1.0])
    return np.column_stack([np.cross(y, z), y, z])


@dataclass(frozen=True)
class TagPlacement:
    tag_id: int
    size_m: float
    rotation_in_base: FloatArray
    position_in_base: FloatArray


def _tag_texture(tag_id: int, module_px: int = 16) -> tuple[npt.NDArray[np.uint8], float, float]:
    side = 8 * module_px
    marker = cv2.aruco.generateImageMarker(DICT, tag_id, side, borderBits=1)
    pad = module_px
    tex = cv2.copyMakeBorder(marker, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255)
    return np.asarray(tex, dtype=np.uint8), float(pad), float(side)


def _background(rng: np.random.Generator, shape: tuple[int, int]) -> FloatArray:
    low = cv2.resize(rng.uniform(60.0, 170.0, (shape[0] // 40 + 1, shape[1] // 40 + 1)), (shape[1], shape[0]))
    fine = cv2.GaussianBlur(rng.normal(0.0, 12.0, shape), (0, 0), 2.0)
    return np.asarray(low + fine, dtype=np.float64)


def render(
    placements: list[TagPlacement],
    mount: Pose3D,
    info: CameraInfo = INFO,
    noise_sigma: float = 2.0,
    seed: int = 0,
    supersample: int = 4,
    blur_sigma_px: float = 0.5,
    texture_interpolation: int = cv2.INTER_LINEAR,
) -> tuple[CameraFrame, dict[int, FloatArray]]:
    """A CameraFrame showing the tags, and each tag's true corners (raw image px, detector order).
    ``supersample=1, blur_sigma_px=0, texture_interpolation=cv2.INTER_NEAREST`` renders as the simulator's
    TinyRenderer does: every pixel is the tag's colour at its centre (aliased, hard edges)."""
    rng = np.random.default_rng(seed)
    h, w = info.height_px, info.width_px
    k = info.matrix()
    dist = np.asarray(info.distortion, dtype=np.float64)
    r_m, t_m = mount.rotation(), mount.translation()
    ss = supersample
    canvas = cv2.resize(_background(rng, (h, w)), (w * ss, h * ss), interpolation=cv2.INTER_NEAREST)
    truth: dict[int, FloatArray] = {}
    for tag in placements:
        r_cam = r_m.T @ tag.rotation_in_base
        t_cam = r_m.T @ (tag.position_in_base - t_m)
        s = tag.size_m / 2.0
        obj = np.array([[-s, s, 0.0], [s, s, 0.0], [s, -s, 0.0], [-s, -s, 0.0]])
        rvec = cv2.Rodrigues(r_cam)[0]
        ideal, _ = cv2.projectPoints(obj, rvec, t_cam, k, np.zeros(5))
        ideal = ideal.reshape(4, 2)
        raw, _ = cv2.projectPoints(obj, rvec, t_cam, k, dist)
        truth[tag.tag_id] = np.asarray(raw, dtype=np.float64).reshape(4, 2)
        tex, pad, side = _tag_texture(tag.tag_id)
        e = side - 0.5
        src = np.array([[pad - 0.5, pad - 0.5], [pad + e, pad - 0.5], [pad + e, pad + e], [pad - 0.5, pad + e]])
        dst = ideal * ss + (ss - 1) / 2.0
        hom = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
        warped = cv2.warpPerspective(tex, hom, (w * ss, h * ss), flags=texture_interpolation, borderValue=0)
        alpha = cv2.warpPerspective(np.full_like(tex, 255), hom, (w * ss, h * ss), flags=texture_interpolation)
        a = alpha.astype(np.float64) / 255.0
        canvas = canvas * (1.0 - a) + warped.astype(np.float64) * a
    img = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)
    if blur_sigma_px > 0.0:  # the lens' point-spread function (symmetric: the edges stay where they are)
        img = cv2.GaussianBlur(img, (0, 0), blur_sigma_px)
    if np.any(dist != 0.0):
        u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        pix = np.stack([u.ravel(), v.ravel()], axis=-1).reshape(-1, 1, 2)
        und = cv2.undistortPoints(pix, k, dist, P=k).reshape(h, w, 2).astype(np.float32)
        img = cv2.remap(img.astype(np.float32), und[..., 0], und[..., 1], cv2.INTER_LINEAR, borderValue=100.0)
    img = img + rng.normal(0.0, noise_sigma, img.shape)
    gray = np.clip(np.round(img), 0, 255).astype(np.uint8)
    bgr = np.asarray(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    frame = CameraFrame(1.5, "front", bgr, info, mount)
    return frame, truth


def rotation_angle_deg(a: FloatArray, b: FloatArray) -> float:
    c = (np.trace(a.T @ b) - 1.0) / 2.0
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


FORWARD_MOUNT = mount_pose(0.2, 0.0, 0.4)


def _tag(tag_id: int, x: float, y: float, z: float, size: float = 0.2, facing: float = math.pi) -> TagPlacement:
    return TagPlacement(tag_id, size, vertical_tag_rotation(facing), np.array([x, y, z]))


# ---------------------------------------------------------------------------------------------------------


def test_single_tag_at_2m_id_corners_position_orientation() -> None:
    tag = _tag(7, 2.2, 0.15, 0.45, facing=math.pi + 0.25)
    frame, truth = render([tag], FORWARD_MOUNT, seed=1)
    obs = FiducialDetector(INFO, 0.2).detect(frame)
    assert [o.tag_id for o in obs] == [7]
    o = obs[0]
    corners = np.array(o.corners_px)
    assert np.linalg.norm(corners - truth[7], axis=1).max() < 0.5
    pos = np.array([o.tag_in_base.x_m, o.tag_in_base.y_m, o.tag_in_base.z_m])
    assert np.linalg.norm(pos - tag.position_in_base) < 0.01
    assert rotation_angle_deg(o.tag_in_base.rotation(), tag.rotation_in_base) < 2.0
    assert o.tag_size_m == 0.2
    assert o.pixel_size_px == pytest.approx(500 * 0.2 / 2.0 * math.cos(0.25), rel=0.08)
    assert 0.0 <= o.reprojection_error_px < 0.5
    assert o.range_m() == pytest.approx(math.hypot(2.2, 0.15), abs=0.01)
    cov = np.array(o.position_covariance_m2)
    np.testing.assert_allclose(cov, cov.T)
    assert np.linalg.eigvalsh(cov).min() >= 0.01**2 * 0.999  # floor: sigma >= 1 cm


@pytest.mark.parametrize("seed", range(6))
def test_random_poses_at_2m_statistics(seed: int) -> None:
    """Tags at 1.8-2.2 m, +-20 deg bearing, yawed +-35 deg and tilted +-15 deg: every one within spec."""
    rng = np.random.default_rng(100 + seed)
    detector = FiducialDetector(INFO, 0.2)
    for _ in range(4):
        rng_range = rng.uniform(1.8, 2.2)
        bearing = rng.uniform(-0.35, 0.35)
        pos = np.array([0.2 + rng_range * math.cos(bearing), rng_range * math.sin(bearing), rng.uniform(0.25, 0.55)])
        rot = (
            vertical_tag_rotation(math.pi + bearing + rng.uniform(-0.6, 0.6))
            @ cv2.Rodrigues(np.array([rng.uniform(-0.25, 0.25), 0.0, rng.uniform(-0.3, 0.3)]))[0]
        )
        tag = TagPlacement(int(rng.integers(0, 587)), 0.2, rot, pos)
        frame, truth = render([tag], FORWARD_MOUNT, seed=int(rng.integers(1 << 30)), noise_sigma=2.0)
        obs = detector.detect(frame)
        assert [o.tag_id for o in obs] == [tag.tag_id]
        o = obs[0]
        assert np.linalg.norm(np.array(o.corners_px) - truth[tag.tag_id], axis=1).max() < 0.5
        got = np.array([o.tag_in_base.x_m, o.tag_in_base.y_m, o.tag_in_base.z_m])
        assert np.linalg.norm(got - pos) < 0.01
        assert rotation_angle_deg(o.tag_in_base.rotation(), rot) < 2.0
        # the reported covariance covers the actual (x, y) error (chi-square 2 dof, 99.9 %)
        err = got[:2] - pos[:2]
        assert float(err @ np.linalg.solve(np.array(o.position_covariance_m2), err)) < 13.8


def test_corner_refinement_beats_subpix_bias() -> None:
    """cornerSubPix shrinks the tag by ~0.15 px per corner; the edge-line fit removes that bias."""
    tag = _tag(3, 2.2, -0.1, 0.4, facing=math.pi - 0.2)
    frame, truth = render([tag], FORWARD_MOUNT, seed=5)
    gray = cv2.cvtColor(frame.image_bgr, cv2.COLOR_BGR2GRAY)
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    params.relativeCornerRefinmentWinSize = 0.5
    corners, ids, _ = cv2.aruco.ArucoDetector(DICT, params).detectMarkers(gray)
    assert ids is not None and np.asarray(ids).ravel().tolist() == [3]
    subpix = np.asarray(corners[0], dtype=np.float64).reshape(4, 2)
    refined = refine_corners_by_edges(gray.astype(np.float32), subpix[None])[0]
    err_subpix = np.linalg.norm(subpix - truth[3], axis=1).mean()
    err_refined = np.linalg.norm(refined - truth[3], axis=1).mean()
    assert err_refined < 0.1
    assert err_refined < err_subpix


def test_several_tags_unknown_ids_dropped_and_sizes_per_id() -> None:
    tags = [_tag(3, 2.0, 0.5, 0.4), _tag(11, 2.0, -0.5, 0.4, size=0.15), _tag(42, 2.5, 0.0, 0.3)]
    frame, _ = render(tags, FORWARD_MOUNT, seed=2)
    everything = FiducialDetector(INFO, 0.2).detect(frame)
    assert [o.tag_id for o in everything] == [3, 11, 42]
    obs = FiducialDetector(INFO, {3: 0.2, 11: 0.15}).detect(frame)
    assert [o.tag_id for o in obs] == [3, 11]  # 42 is not in the map
    for o, tag in zip(obs, tags[:2], strict=True):
        got = np.array([o.tag_in_base.x_m, o.tag_in_base.y_m, o.tag_in_base.z_m])
        assert np.linalg.norm(got - tag.position_in_base) < 0.01
        assert o.tag_size_m == tag.size_m
    # the wrong size scales the range: a 0.15 m tag taken for 0.2 m reads 4/3 as far
    wrong = next(o for o in everything if o.tag_id == 11)
    in_cam = tags[1].position_in_base - FORWARD_MOUNT.translation()
    expected = in_cam * 0.2 / 0.15 + FORWARD_MOUNT.translation()
    got = np.array([wrong.tag_in_base.x_m, wrong.tag_in_base.y_m, wrong.tag_in_base.z_m])
    assert np.linalg.norm(got - expected) < 0.02


def test_small_tags_below_min_pixel_size_dropped() -> None:
    tag = _tag(5, 3.8, 0.0, 0.4, size=0.2)  # about 28 px across
    frame, _ = render([tag], FORWARD_MOUNT, seed=3)
    obs = FiducialDetector(INFO, 0.2).detect(frame)
    assert [o.tag_id for o in obs] == [5]
    assert 25.0 < obs[0].pixel_size_px < 30.0
    assert FiducialDetector(INFO, 0.2, min_pixel_size_px=30.0).detect(frame) == []


def test_ambiguous_small_tags_rejected() -> None:
    """Ratio gate forced to 0: every tag under the ambiguity size is treated as ambiguous."""
    near = _tag(1, 1.2, 0.3, 0.4)  # ~80 px
    far = _tag(2, 3.2, -0.3, 0.4)  # ~33 px
    frame, _ = render([near, far], FORWARD_MOUNT, seed=4)
    assert [o.tag_id for o in FiducialDetector(INFO, 0.2).detect(frame)] == [1, 2]
    strict = FiducialDetector(INFO, 0.2, ambiguity_ratio=0.0, ambiguity_max_pixel_size_px=50.0)
    assert [o.tag_id for o in strict.detect(frame)] == [1]


def test_mount_pitched_down_and_offset_forward() -> None:
    mount = mount_pose(0.45, 0.05, 0.8, pitch_down_rad=math.radians(25.0))
    tag = TagPlacement(9, 0.2, vertical_tag_rotation(math.pi - 0.1), np.array([2.3, -0.2, 0.2]))
    frame, truth = render([tag], mount, seed=6)
    obs = FiducialDetector(INFO, 0.2).detect(frame)
    assert [o.tag_id for o in obs] == [9]
    o = obs[0]
    assert np.linalg.norm(np.array(o.corners_px) - truth[9], axis=1).max() < 0.5
    got = np.array([o.tag_in_base.x_m, o.tag_in_base.y_m, o.tag_in_base.z_m])
    assert np.linalg.norm(got - tag.position_in_base) < 0.01
    assert rotation_angle_deg(o.tag_in_base.rotation(), tag.rotation_in_base) < 2.0
    # a tag on the ground, face up, seen by the same pitched camera
    # face up (z_tag = z_base), top edge away from the rover (y_tag = x_base): R = Rz(-90 deg)
    flat = TagPlacement(10, 0.2, rot_z(-math.pi / 2), np.array([1.6, 0.1, 0.0]))
    frame, _ = render([flat], mount, seed=7)
    obs = FiducialDetector(INFO, 0.2).detect(frame)
    assert [o.tag_id for o in obs] == [10]
    got = np.array([obs[0].tag_in_base.x_m, obs[0].tag_in_base.y_m, obs[0].tag_in_base.z_m])
    assert np.linalg.norm(got - flat.position_in_base) < 0.01
    assert rotation_angle_deg(obs[0].tag_in_base.rotation(), flat.rotation_in_base) < 2.0


def test_side_camera_yawed_left() -> None:
    mount = mount_pose(0.0, 0.3, 0.5, yaw_rad=math.pi / 2)  # looks along +y_base
    tag = _tag(4, 0.2, 2.3, 0.5, facing=-math.pi / 2 + 0.2)
    frame, _ = render([tag], mount, seed=8)
    obs = FiducialDetector(INFO, 0.2).detect(frame)
    assert [o.tag_id for o in obs] == [4]
    got = np.array([obs[0].tag_in_base.x_m, obs[0].tag_in_base.y_m, obs[0].tag_in_base.z_m])
    assert np.linalg.norm(got - tag.position_in_base) < 0.01
    assert obs[0].bearing_rad() == pytest.approx(math.atan2(2.3, 0.2), abs=0.01)
    cov = np.array(obs[0].position_covariance_m2)
    assert cov[1, 1] > cov[0, 0]  # range error lies along base y for this camera


def test_lens_distortion_passed_to_pnp() -> None:
    info = CameraInfo(640, 480, 500.0, 500.0, 319.5, 239.5, (-0.28, 0.09, 0.0005, -0.0003, 0.0))
    tag = _tag(6, 2.0, 0.55, 0.7, facing=math.pi + 0.3)  # off-centre, where distortion bites
    frame, truth = render([tag], FORWARD_MOUNT, info=info, seed=9)
    obs = FiducialDetector(info, 0.2).detect(frame)
    assert [o.tag_id for o in obs] == [6]
    assert np.linalg.norm(np.array(obs[0].corners_px) - truth[6], axis=1).max() < 0.5
    got = np.array([obs[0].tag_in_base.x_m, obs[0].tag_in_base.y_m, obs[0].tag_in_base.z_m])
    assert np.linalg.norm(got - tag.position_in_base) < 0.01


def test_covariance_grows_with_range() -> None:
    near, far = _tag(1, 1.2, 0.4, 0.4), _tag(2, 3.5, -0.2, 0.4)  # side by side, not occluding
    frame, _ = render([near, far], FORWARD_MOUNT, seed=10)
    obs = {o.tag_id: o for o in FiducialDetector(INFO, 0.2, min_position_sigma_m=0.0).detect(frame)}
    var_near, var_far = obs[1].position_covariance_m2[0][0], obs[2].position_covariance_m2[0][0]
    # range sigma ~ r^2 / (f s): (3.31 / 1.08)^2 ~ 9x the sigma, ~90x the variance
    r_near, r_far = math.hypot(1.0, 0.4), math.hypot(3.3, 0.2)
    assert var_far / var_near == pytest.approx((r_far / r_near) ** 4, rel=0.25)
    # and the range direction dominates (x for a tag straight ahead)
    assert obs[2].position_covariance_m2[0][0] > 10.0 * obs[2].position_covariance_m2[1][1]


def test_corner_refinement_many_tags_at_once() -> None:
    """Many quads in one call (a single-row remap map overflowed OpenCV's 32767-column limit from 14 tags)."""
    tag = _tag(3, 2.2, -0.1, 0.4, facing=math.pi - 0.2)
    frame, truth = render([tag], FORWARD_MOUNT, seed=5)
    gray = cv2.cvtColor(frame.image_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    one = refine_corners_by_edges(gray, truth[3][None])
    many = refine_corners_by_edges(gray, np.repeat(truth[3][None], 40, axis=0))
    assert many.shape == (40, 4, 2)
    np.testing.assert_allclose(many, np.repeat(one, 40, axis=0))


def test_real_camera_profile_finds_tags_and_checks_options() -> None:
    tag = _tag(3, 2.2, -0.1, 0.4, facing=math.pi - 0.2)
    frame, truth = render([tag], FORWARD_MOUNT, seed=5)
    obs = real_camera_fiducial_detector(INFO, 0.2).detect(frame)
    assert [o.tag_id for o in obs] == [3]
    assert np.linalg.norm(np.array(obs[0].corners_px) - truth[3], axis=1).mean() < 0.1
    with pytest.raises(ValueError, match="decode_px_per_module"):
        FiducialDetector(INFO, 0.2, decode_px_per_module=1)
    with pytest.raises(ValueError, match="error_correction_rate"):
        FiducialDetector(INFO, 0.2, error_correction_rate=1.5)
    with pytest.raises(ValueError, match="decode_sharpening"):
        FiducialDetector(INFO, 0.2, decode_sharpening=-0.1)


def test_decode_tag36h11_ids_and_corner_order_in_every_rotation() -> None:
    """The vectorised decoder returns the rendered ids with the corners rolled to OpenCV's order (the tag's
    top-left first) whatever corner the quad starts at, and rejects quads on the background."""
    tags = [_tag(3, 2.2, -0.35, 0.4), _tag(411, 2.0, 0.3, 0.45, facing=math.pi + 0.3), _tag(0, 1.6, 0.0, 0.3)]
    frame, truth = render(tags, FORWARD_MOUNT, seed=9)
    gray = np.asarray(cv2.cvtColor(frame.image_bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    for shift in range(4):
        quads = np.stack([np.roll(truth[t.tag_id], shift, axis=0) for t in tags])
        out, ids = decode_tag36h11(gray, quads)
        assert ids == [3, 411, 0]
        for quad, tag in zip(out, tags, strict=True):
            np.testing.assert_allclose(quad, truth[tag.tag_id])
    background = np.array([[[20.0, 20.0], [60.0, 20.0], [60.0, 60.0], [20.0, 60.0]]])
    assert decode_tag36h11(gray, background)[1] == []
    assert plausible_tag_quads(gray, truth[3][None]).tolist() == [True]
    assert plausible_tag_quads(np.full_like(gray, 128), truth[3][None]).tolist() == [False]  # no contrast
    inverted = np.asarray(255 - gray, dtype=np.uint8)  # white border: every border module wrong
    assert plausible_tag_quads(inverted, truth[3][None]).tolist() == [False]
    # a duplicate quad (two threshold passes) is returned once
    assert decode_tag36h11(gray, np.stack([truth[3], truth[3] + 0.3]))[1] == [3]
    assert decode_tag36h11(gray, np.zeros((0, 4, 2)))[1] == []


def test_fast_decode_agrees_with_opencv_decoding() -> None:
    rng = np.random.default_rng(21)
    tags = [_tag(int(i), 2.0 + 0.3 * k, -0.5 + 0.45 * k, 0.4) for k, i in enumerate(rng.integers(0, 587, 3))]
    frame, truth = render(tags, FORWARD_MOUNT, seed=4)
    slow = FiducialDetector(INFO, 0.2).detect(frame)
    for kwargs in ({"fast_decode": True}, {"fast_decode": True, "quad_search_min_contrast": 40.0}):
        fast = FiducialDetector(INFO, 0.2, **kwargs).detect(frame)
        assert [o.tag_id for o in fast] == [o.tag_id for o in slow] == sorted(t.tag_id for t in tags)
        for o in fast:
            assert np.linalg.norm(np.array(o.corners_px) - truth[o.tag_id], axis=1).max() < 0.5
    with pytest.raises(ValueError, match="quad_search_min_contrast"):
        FiducialDetector(INFO, 0.2, quad_search_min_contrast=-1.0)


def test_empty_image_and_contract_checks() -> None:
    frame, _ = render([], FORWARD_MOUNT, seed=11)
    assert FiducialDetector(INFO, 0.2).detect(frame) == []
    other = CameraInfo(640, 480, 520.0, 520.0, 319.5, 239.5)
    with pytest.raises(ValueError, match="CameraInfo"):
        FiducialDetector(other, 0.2).detect(frame)
    with pytest.raises(ValueError):
        FiducialDetector(INFO, 0.0)
    with pytest.raises(ValueError):
        FiducialDetector(INFO, {1: -0.2})
    with pytest.raises(ValueError):
        FiducialDetector(INFO, 0.2, min_pixel_size_px=1.0)


def test_rotation_to_rpy_round_trip_including_gimbal_lock() -> None:
    rng = np.random.default_rng(12)
    for _ in range(200):
        pose = Pose3D(0.0, 0.0, 0.0, *rng.uniform(-math.pi, math.pi, 3))
        back = pose3d_from_matrix(pose.rotation(), np.zeros(3))
        np.testing.assert_allclose(back.rotation(), pose.rotation(), atol=1e-9)
    for pitch in (math.pi / 2, -math.pi / 2):
        r = Pose3D(0.0, 0.0, 0.0, 0.3, pitch, -0.7).rotation()
        roll, p, yaw = rotation_to_rpy(r)
        np.testing.assert_allclose(Pose3D(0.0, 0.0, 0.0, roll, p, yaw).rotation(), r, atol=1e-9)


# ------------------------------------------------------------------ fast paths: kernels, own quads, alignment


def _refine_reference(gray: npt.NDArray[np.float32], q: FloatArray) -> FloatArray:
    """The edge refinement written out in plain numpy (no lens distortion, defaults), as documented in
    ``refine_corners_by_edges``: the numba kernels must compute exactly this."""
    t, s = np.linspace(0.15, 0.85, 24), np.linspace(-1.0, 1.0, 25)
    seg = np.roll(q, -1, axis=1) - q
    length = np.linalg.norm(seg, axis=2)
    d = seg / length[..., None]
    nrm = np.stack([d[..., 1], -d[..., 0]], axis=-1)
    out = np.sign(np.sum((q + 0.5 * seg - q.mean(axis=1, keepdims=True)) * nrm, axis=-1, keepdims=True))
    nrm = nrm * out
    module = length.mean(axis=1) / 8.0
    w = np.clip(0.5 * module, 1.0, 3.0)
    base = q[:, :, None, :] + (t[None, None, :, None] * length[:, :, None, None]) * d[:, :, None, :]
    pts = base[:, :, :, None, :] + (s[None, :] * w[:, None])[:, None, None, :, None] * nrm[:, :, None, None, :]
    mx = np.ascontiguousarray(pts[..., 0].reshape(-1, s.size), dtype=np.float32)
    my = np.ascontiguousarray(pts[..., 1].reshape(-1, s.size), dtype=np.float32)
    prof = cv2.remap(gray, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float64)
    prof = prof.reshape(q.shape[0], 4, t.size, s.size)
    inner, outer = prof[..., :3].mean(axis=-1), prof[..., -3:].mean(axis=-1)
    contrast = outer - inner
    norm_prof = np.clip((prof - inner[..., None]) / contrast[..., None], -0.5, 1.5)
    area = 0.5 * (s[1] - s[0]) * np.sum(norm_prof[..., 1:] + norm_prof[..., :-1], axis=-1)
    edge = base + ((1.0 - area) * w[:, None, None])[..., None] * nrm[:, :, None, :]
    weight = np.clip(contrast, 0.0, None)
    weight = np.where(weight > 0.3 * np.median(weight, axis=-1, keepdims=True), weight, 0.0)
    c = np.einsum("nkm,nkmi->nki", weight, edge) / weight.sum(axis=-1)[..., None]
    r = edge - c[:, :, None, :]
    direction = np.linalg.eigh(np.einsum("nkm,nkmi,nkmj->nkij", weight, r, r))[1][..., :, 1]
    pc, pd = np.roll(c, 1, axis=1), np.roll(direction, 1, axis=1)
    det = pd[..., 0] * -direction[..., 1] + direction[..., 0] * pd[..., 1]
    rhs = c - pc
    a = (rhs[..., 0] * -direction[..., 1] + direction[..., 0] * rhs[..., 1]) / det
    return np.asarray(pc + a[..., None] * pd, dtype=np.float64)


def test_edge_refinement_kernels_compute_the_documented_maths() -> None:
    tags = [_tag(5, 2.0, 0.4, 0.4, facing=math.pi - 0.3), _tag(9, 1.5, -0.3, 0.35), _tag(17, 3.0, 0.0, 0.5)]
    frame, truth = render(tags, FORWARD_MOUNT, seed=3)
    gray = np.asarray(cv2.cvtColor(frame.image_bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    start = np.stack([truth[t.tag_id] for t in tags]) + np.random.default_rng(1).normal(0.0, 0.4, (3, 4, 2))
    got_u8 = refine_corners_by_edges(gray, start)  # uint8: only the sampled box is converted
    got_f32 = refine_corners_by_edges(gray.astype(np.float32), start)
    np.testing.assert_allclose(got_u8, got_f32, atol=1e-9)
    np.testing.assert_allclose(got_u8, _refine_reference(gray.astype(np.float32), start), atol=1e-7)
    for quad, tag in zip(got_u8, tags, strict=True):
        assert np.abs(quad - truth[tag.tag_id]).max() < 0.25


def test_wide_edge_search_recovers_corners_two_pixels_off() -> None:
    tags = [_tag(2, 1.8, 0.3, 0.4), _tag(40, 2.4, -0.4, 0.45, facing=math.pi + 0.3)]
    frame, truth = render(tags, FORWARD_MOUNT, seed=8)
    gray = np.asarray(cv2.cvtColor(frame.image_bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    true_quads = np.stack([truth[t.tag_id] for t in tags])
    start = true_quads + np.random.default_rng(2).uniform(-2.0, 2.0, true_quads.shape)
    default = refine_corners_by_edges(gray, start)
    wide = refine_corners_by_edges(gray, start, search_modules=0.75, max_move_px=3.0)
    fine = refine_corners_by_edges(gray, wide)
    assert np.abs(fine - true_quads).max() < 0.3
    assert np.abs(default - true_quads).max() > np.abs(fine - true_quads).max()


def test_find_tag_quads_traces_every_rendered_tag_clockwise() -> None:
    tags = [_tag(1, 1.6, 0.35, 0.4), _tag(300, 2.6, -0.2, 0.45, facing=math.pi + 0.4), _tag(77, 3.5, 0.6, 0.5)]
    frame, truth = render(tags, FORWARD_MOUNT, seed=5)
    gray = np.asarray(cv2.cvtColor(frame.image_bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    quads = find_tag_quads(gray, 23, 12.0)
    x, y = quads[..., 0], quads[..., 1]
    assert np.all(np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1) > 0.0)
    for tag in tags:
        true_quad = truth[tag.tag_id]
        err = min(np.abs(np.roll(q, k, axis=0) - true_quad).max() for q in quads for k in range(4))
        assert err < 2.0  # contour corners: the wide edge search (above) takes them from here
    _, ids = decode_tag36h11(gray, refine_corners_by_edges(gray, quads, search_modules=0.75, max_move_px=3.0))
    assert sorted(ids) == [1, 77, 300]
    with pytest.raises(ValueError, match="window_px"):
        find_tag_quads(gray, 22)


def test_decoder_keeps_the_outer_quad_of_nested_duplicates() -> None:
    frame, truth = render([_tag(12, 1.5, 0.0, 0.4)], FORWARD_MOUNT, seed=2)
    gray = np.asarray(cv2.cvtColor(frame.image_bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    outer = truth[12]
    centre = outer.mean(axis=0)
    inner = centre + 0.9 * (outer - centre)  # the border traced on its inside: decodes (5 bits corrected)
    assert decode_tag36h11(gray, inner[None], 5)[1] == [12]
    quads, ids = decode_tag36h11(gray, np.stack([inner, outer]), 5)
    assert ids == [12]
    np.testing.assert_allclose(quads[0], outer)
    # the same quad twice with a little jitter (two threshold passes): the first is kept
    jittered = centre + 0.97 * (outer - centre)
    quads, ids = decode_tag36h11(gray, np.stack([jittered, outer]), 5)
    assert ids == [12]
    np.testing.assert_allclose(quads[0], jittered)


def test_template_alignment_sharpens_corners_and_orientation() -> None:
    template = tag_template(33)
    assert template.shape == (80, 80) and template[0, 0] == 255.0 and template[8, 8] == 0.0
    rng = np.random.default_rng(7)
    aligned_errors = []
    for k in range(4):
        tag = _tag(33, 1.5 + 0.2 * k, rng.uniform(-0.3, 0.3), 0.4, facing=math.pi + rng.uniform(-0.5, 0.5))
        frame, truth = render([tag], FORWARD_MOUNT, seed=20 + k)
        gray = np.asarray(cv2.cvtColor(frame.image_bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        start = truth[33] + rng.normal(0.0, 0.4, (4, 2))
        aligned = align_to_template(gray, start, template)
        aligned_errors.append(np.abs(aligned - truth[33]).max())
        det = FiducialDetector(INFO, 0.2, align_template_min_px=20.0)
        (o,) = det.detect(frame)
        assert rotation_angle_deg(o.tag_in_base.rotation(), tag.rotation_in_base) < 1.0
    assert max(aligned_errors) < 0.15
    # far off, or on a blank image, the corners are returned unchanged
    blank = np.full((480, 640), 128, dtype=np.uint8)
    np.testing.assert_array_equal(align_to_template(blank, truth[33], template), truth[33])
    with pytest.raises(ValueError, match="align_template_min_px"):
        FiducialDetector(INFO, 0.2, align_template_min_px=2.0)
    with pytest.raises(ValueError, match="36h11 id"):
        tag_template(600)


def test_pose_refinement_on_point_sampled_tags_and_left_alone_on_camera_images() -> None:
    """``refine_pose_min_px``: on point-sampled renders (every pixel the tag's colour at its centre, as the
    simulator's TinyRenderer draws) the pose is fitted to all module edges, and the median orientation error
    falls well below the corner-based IPPE pose's (measured: 0.36 vs 1.23 deg over these 8 views; the tilt
    of a near-frontal tag stays weakly determined by such an image: 3 of the 8 stay above 1.9 deg, one at
    10.6 deg either way); on anti-aliased, blurred renders (a camera) the fit is not made (its model does
    not hold there) and the pose is exactly the edge-refined one."""
    plain = FiducialDetector(INFO, 0.2, threshold_windows_px=(23,), keep_ambiguous=True)
    refined = FiducialDetector(INFO, 0.2, threshold_windows_px=(23,), keep_ambiguous=True, refine_pose_min_px=20.0)
    rng = np.random.default_rng(3)
    errors: dict[str, list[float]] = {"plain": [], "refined": []}
    for k in range(8):
        d = rng.uniform(1.1, 1.8)
        tag = _tag(6, 0.2 + d, rng.uniform(-0.3, 0.3), 0.4, facing=math.pi + rng.uniform(-0.5, 0.5))
        frame, _ = render(
            [tag], FORWARD_MOUNT, seed=10 + k, supersample=1, blur_sigma_px=0.0, texture_interpolation=cv2.INTER_NEAREST
        )
        for name, det in (("plain", plain), ("refined", refined)):
            (o,) = det.detect(frame)
            errors[name].append(rotation_angle_deg(o.tag_in_base.rotation(), tag.rotation_in_base))
            assert np.linalg.norm(o.tag_in_base.translation() - tag.position_in_base) < 0.02
    assert float(np.median(errors["refined"])) < 0.5 * float(np.median(errors["plain"])), errors
    assert sorted(errors["refined"])[4] < 0.5, errors  # 5 of 8 within half a degree
    for k in range(3):  # anti-aliased and blurred: left alone
        tag = _tag(33, 1.5 + 0.3 * k, rng.uniform(-0.3, 0.3), 0.4, facing=math.pi + rng.uniform(-0.5, 0.5))
        frame, _ = render([tag], FORWARD_MOUNT, seed=30 + k)
        (a,) = plain.detect(frame)
        (b,) = refined.detect(frame)
        assert a.tag_in_base == b.tag_in_base
    distance = tag_signed_distance(6, 8)
    assert distance.shape == (80, 80)
    assert distance[4, 4] > 0.0 > distance[12, 12]  # quiet zone white, border black
    blank = np.full((480, 640), 128, dtype=np.uint8)
    assert refine_tag_pose(blank, INFO.matrix(), None, np.eye(3), np.array([0.0, 0.0, 1.5]), 0.2, distance) is None
    with pytest.raises(ValueError, match="refine_pose_min_px"):
        FiducialDetector(INFO, 0.2, refine_pose_min_px=2.0)


def test_warm_up_compiles_the_refinement_kernels() -> None:
    warm_up()  # no error; then a refinement on a real tag agrees with before
    frame, truth = render([_tag(4, 1.8, 0.0, 0.4)], FORWARD_MOUNT, seed=6)
    gray = np.asarray(cv2.cvtColor(frame.image_bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    assert np.abs(refine_corners_by_edges(gray, truth[4][None])[0] - truth[4]).max() < 0.25
