"""Multi-tag bundle pose: one ``solvePnP`` over the corners of every seen tag of a known rigid layout.

A bundle (e.g. the start-zone fiducial bar: tags along a 1.5 m bar about 40 cm above the regolith) is a
set of tags whose poses in a common ``bundle`` frame are known. With corners of several tags the pose is
far better constrained than from any single tag (no IPPE flip ambiguity, longer baseline), so small,
individually ambiguous tags still give a good bundle pose.

Method: each seen tag's four corners (from ``FiducialObservation.corners_px``, raw pixels, detector order
TL, TR, BR, BL in the tag frame x right, y up) are put in the bundle frame; the initial guess is the
single-tag pose of the largest unambiguous tag (its ``tag_in_base`` moved back to ``camera_optical`` and
composed with the tag's pose in the bundle), or ``SOLVEPNP_SQPNP`` when every tag is ambiguous; the pose
is then refined with Levenberg-Marquardt (``cv2.solvePnPRefineLM``) over all corners.

Covariance (6x6, camera_optical, order [rx, ry, rz, tx, ty, tz]: Rodrigues rotation vector (rad) then
translation (m)) is the Gauss-Newton approximation ``sigma^2 (J^T J)^-1`` with J the reprojection Jacobian
from ``cv2.projectPoints`` and sigma = max(corner_sigma_px, RMS reprojection error).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from autonomy.msgs import CameraInfo, FiducialObservation, Pose3D
from autonomy.perception.fiducials import pose3d_from_matrix

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BundlePose:
    """The bundle frame's pose in ``base_link`` (and ``camera_optical``) from ``tag_count`` tags.

    ``covariance_cam`` is 6x6 over [rx, ry, rz (rad, rotation vector), tx, ty, tz (m)] in camera_optical.
    """

    stamp_s: float
    bundle_in_base: Pose3D
    rotation_cam: FloatArray
    translation_cam_m: FloatArray
    tag_ids: tuple[int, ...]
    reprojection_rms_px: float
    covariance_cam: FloatArray

    @property
    def tag_count(self) -> int:
        return len(self.tag_ids)


class TagBundle:
    """A rigid set of tags: ``tag_poses`` maps tag id -> (R 3x3, t 3) of the tag frame in the bundle frame,
    ``tag_sizes_m`` id -> side length (m)."""

    def __init__(
        self,
        tag_poses: Mapping[int, tuple[FloatArray, FloatArray]],
        tag_sizes_m: Mapping[int, float] | float,
        *,
        corner_sigma_px: float = 0.5,
    ) -> None:
        if not tag_poses:
            raise ValueError("TagBundle: need at least one tag")
        if not corner_sigma_px > 0.0:
            raise ValueError(f"TagBundle: corner_sigma_px must be > 0, got {corner_sigma_px}")
        self._corners: dict[int, FloatArray] = {}
        self._poses: dict[int, tuple[FloatArray, FloatArray]] = {}
        for tag_id, (rot, trans) in tag_poses.items():
            r = np.asarray(rot, dtype=np.float64)
            t = np.asarray(trans, dtype=np.float64).reshape(-1)
            if r.shape != (3, 3) or t.shape != (3,):
                raise ValueError(f"TagBundle: tag {tag_id}: need a 3x3 rotation and a 3-vector")
            if not np.allclose(r @ r.T, np.eye(3), atol=1e-6):
                raise ValueError(f"TagBundle: tag {tag_id}: rotation is not orthonormal")
            size = float(tag_sizes_m[tag_id] if isinstance(tag_sizes_m, Mapping) else tag_sizes_m)
            if not (math.isfinite(size) and size > 0.0):
                raise ValueError(f"TagBundle: tag {tag_id}: size must be > 0 m, got {size}")
            h = 0.5 * size
            local = np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]])
            self._corners[int(tag_id)] = local @ r.T + t
            self._poses[int(tag_id)] = (r, t)
        self._sigma = float(corner_sigma_px)

    @staticmethod
    def bar(tag_ids: Sequence[int], spacing_m: float, size_m: float, facing_yaw_rad: float = 0.0) -> TagBundle:
        """Tags in a row along a straight bar (bundle x along the bar, z up), faces along ``facing_yaw_rad``.

        Tag k sits at x = k * spacing_m; the bundle origin is the first tag's centre.
        """
        c, s = math.cos(facing_yaw_rad), math.sin(facing_yaw_rad)
        normal = np.array([c, s, 0.0])
        up = np.array([0.0, 0.0, 1.0])
        rot = np.column_stack([np.cross(up, normal), up, normal])  # tag x right, y up, z out of the face
        along = np.cross(up, normal)
        poses = {int(i): (rot, along * (k * spacing_m)) for k, i in enumerate(tag_ids)}
        return TagBundle(poses, size_m)

    @property
    def tag_ids(self) -> tuple[int, ...]:
        return tuple(sorted(self._corners))

    def tag_pose(self, tag_id: int) -> tuple[FloatArray, FloatArray]:
        r, t = self._poses[tag_id]
        return r.copy(), t.copy()

    def estimate(
        self, observations: Sequence[FiducialObservation], info: CameraInfo, mount: Pose3D
    ) -> BundlePose | None:
        """The bundle's pose from the observations of its tags (others ignored); None without any."""
        seen = [o for o in observations if o.tag_id in self._corners and len(o.corners_px) == 4]
        if not seen:
            return None
        obj = np.concatenate([self._corners[o.tag_id] for o in seen], axis=0)
        img = np.asarray([o.corners_px for o in seen], dtype=np.float64).reshape(-1, 2)
        k = info.matrix()
        dist = np.asarray(info.distortion, dtype=np.float64)
        r_mount, t_mount = mount.rotation(), mount.translation()

        anchors = [o for o in seen if not o.orientation_ambiguous]
        if anchors:
            a = max(anchors, key=lambda o: o.pixel_size_px)
            r_tag_base = a.tag_in_base.rotation()
            t_tag_base = a.tag_in_base.translation()
            r_tag_cam = r_mount.T @ r_tag_base
            t_tag_cam = r_mount.T @ (t_tag_base - t_mount)
            r_tb, t_tb = self._poses[a.tag_id]  # tag in bundle
            r_b_cam = r_tag_cam @ r_tb.T
            t_b_cam = t_tag_cam - r_b_cam @ t_tb
            rvec = np.asarray(cv2.Rodrigues(r_b_cam)[0], dtype=np.float64)
            tvec = t_b_cam.reshape(3, 1).copy()
        else:
            if img.shape[0] < 4:
                return None
            ok, rvec0, tvec0 = cv2.solvePnP(obj, img, k, dist, flags=cv2.SOLVEPNP_SQPNP)
            if not ok:
                return None
            rvec = np.asarray(rvec0, dtype=np.float64)
            tvec = np.asarray(tvec0, dtype=np.float64)
        rvec_lm, tvec_lm = cv2.solvePnPRefineLM(obj, img, k, dist, rvec, tvec)
        rvec = np.asarray(rvec_lm, dtype=np.float64).reshape(3, 1)
        tvec = np.asarray(tvec_lm, dtype=np.float64).reshape(3, 1)
        proj, jac = cv2.projectPoints(obj, rvec, tvec, k, dist)
        resid = np.asarray(proj, dtype=np.float64).reshape(-1, 2) - img
        rms = float(np.sqrt(np.mean(np.sum(resid**2, axis=1))))
        if not (math.isfinite(rms) and float(tvec[2, 0]) > 0.0):
            return None
        j = np.asarray(jac, dtype=np.float64)[:, :6]
        sigma = max(self._sigma, rms)
        info_matrix = j.T @ j
        cov = sigma**2 * np.linalg.pinv(info_matrix)
        r_cam = np.asarray(cv2.Rodrigues(rvec)[0], dtype=np.float64)
        t_cam = tvec.reshape(3)
        r_base = r_mount @ r_cam
        t_base = r_mount @ t_cam + t_mount
        stamp = max(o.stamp_s for o in seen)
        return BundlePose(
            stamp_s=stamp,
            bundle_in_base=pose3d_from_matrix(r_base, t_base),
            rotation_cam=r_cam,
            translation_cam_m=t_cam,
            tag_ids=tuple(o.tag_id for o in seen),
            reprojection_rms_px=rms,
            covariance_cam=0.5 * (cov + cov.T),
        )
