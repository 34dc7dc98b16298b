"""AprilTag 36h11 fiducial detection and pose estimation in ``base_link``.

Pipeline for one ``CameraFrame`` (with ``fast_decode``, OpenCV only traces quads, which are edge-refined
first and decoded by ``decode_tag36h11``)::

    BGR -> grey -> cv2.aruco.ArucoDetector (DICT_APRILTAG_36h11, CORNER_REFINE_SUBPIX)
        -> drop unknown ids and tags smaller than ``min_pixel_size_px``
        -> edge-line corner refinement (sub-pixel edge points on each side, line fit, line intersection)
        -> cv2.solvePnPGeneric(IPPE_SQUARE): both solutions; reject ambiguous small tags
        -> camera_optical -> base_link with ``frame.mount``
        -> covariance of the tag centre's (x, y) in base_link

Speed: the edge refinement's per-sample arithmetic runs in numba kernels (``_fiducial_kernels``: about
0.05 ms for a few tags, where the same maths as some sixty numpy calls took 0.15-0.2 ms), and a uint8 image
is converted to float only in the box the samples fall in (no full-frame float copy per frame).

Orientation: ``align_template_min_px`` adds a photometric alignment of each decoded tag's own image
(``align_to_template``, ECC homography) after the edge refinement: every module edge constrains the corners,
not only the four outer sides. Off by default (about 0.5 ms per tag; the estimator uses only positions).
``refine_pose_min_px`` fits the 6-DoF pose to every pixel of a point-sampled (not anti-aliased) image of
the tag (``refine_tag_pose``): the simulator's renderer draws each pixel as the tag's colour at its centre,
so edges are staircases that fix a nearly axis-parallel side only to +-0.5 px and bias corner-based poses
by degrees on near-frontal tags. Images with graded edges (real cameras) are detected and left to the edge
refinement. Off by default (about 13 ms per tag at 640x480, 19 at 1280x720: both IPPE solutions are fitted).

Why the extra corner refinement: OpenCV's CORNER_REFINE_SUBPIX (cornerSubPix on an L-shaped corner) pulls
every corner about 0.15 px towards the tag centre on blurred edges, which shrinks the tag and biases the
range by about +1 cm at 2 m for a 0.2 m tag at f = 500 px. CORNER_REFINE_APRILTAG is unbiased in shape
but returns corners shifted by +0.5 px in x and y and takes about 65 ms per 640x480 frame. Fitting a line
to sub-pixel edge points along each side of the black border and intersecting adjacent lines is
unbiased (synthetic 0.2 m tags at 2 m, 0.5 px blur, 2 grey levels of noise: median corner error 0.01 px,
position error 0.2 mm) and costs about 0.1 ms per tag; the whole ``detect`` takes about 3 ms per
640x480 frame with three tags on one x86 core.

Ambiguity: below ~20 px a tag's orientation is poorly constrained (IPPE's two solutions fit almost
equally; on synthetic 17 px tags a quarter of the picks are the wrong flip) while its position is not
(the two solutions' centres differ by millimetres). Tags under ``ambiguity_max_pixel_size_px`` whose
reprojection-error ratio best / second exceeds ``ambiguity_ratio`` are dropped, or, with
``keep_ambiguous=True``, kept with ``orientation_ambiguous=True`` and the mean of the two solutions' centres as
position (the estimator uses only the position).

Frames (REP-103): ``camera_optical`` z forward out of the lens, x right, y down; ``base_link`` x forward,
y left, z up. ``frame.mount`` is the pose of ``camera_optical`` in ``base_link``, so a point transforms as
``p_base = R_mount @ p_cam + t_mount``. The tag frame is IPPE_SQUARE's: origin at the tag centre, x to the
tag's right, y up the tag, z out of the printed face.

Measurement covariance of the tag centre (the model, written out)::

    r      = |t_cam|                         range to the tag centre (m)
    f      = (fx + fy) / 2                   focal length (px)
    s      = tag side (m);  p = f s / r      tag side in pixels
    sigma  = max(corner_sigma_px, reprojection_error_px)
    sigma_r = sigma * r^2 / (f s)            range:   dr = r dp / p = r^2 dp / (f s)
    sigma_t = sigma * r / f                  across the ray (bearing sigma sigma / f times range)
    C_cam  = sigma_t^2 I3 + (sigma_r^2 - sigma_t^2) u u^T,   u = t_cam / r   (ray direction)
    C_base = R_mount C_cam R_mount^T
    position_covariance_m2 = C_base[0:2, 0:2] + min_position_sigma_m^2 I2

    [[var_x,  cov_xy],
     [cov_xy, var_y ]]      (m^2, base_link)

The floor ``min_position_sigma_m`` stands for what the image cannot see: landmark survey error, mount
calibration error, the tag bar not being exactly where the map says.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import cv2
import numpy as np
import numpy.typing as npt

from autonomy.msgs import CameraFrame, CameraInfo, FiducialObservation, Mat2, Pose3D
from autonomy.perception import _fiducial_kernels as _kernels

FloatArray = npt.NDArray[np.float64]

# A 36h11 tag's black border spans 8 modules (6 data bits + 1 border module each side).
_TAG_MODULES = 8.0
# Edge-refinement sampling: points along each side (avoiding the corners) and samples across it.
_EDGE_T = np.linspace(0.15, 0.85, 24)
_EDGE_S = np.linspace(-1.0, 1.0, 25)
_NEXT = np.array([1, 2, 3, 0])  # next corner of a quad (cyclic)
_NESTED_RATIO = 1.08  # decode_tag36h11: a duplicate this much larger is the outer trace of a nested pair
_CYCLIC = np.array([[(i - k) % 4 for i in range(4)] for k in range(4)])  # row k: np.roll by k


def rotation_to_rpy(rotation: FloatArray) -> tuple[float, float, float]:
    """Inverse of ``Pose3D.rotation``: (roll, pitch, yaw) (rad) with R = Rz(yaw) Ry(pitch) Rx(roll).

    At pitch = +-pi/2 (gimbal lock) roll is set to 0 and the remaining rotation goes into yaw.
    """
    r = np.asarray(rotation, dtype=np.float64)
    if r.shape != (3, 3):
        raise ValueError(f"rotation_to_rpy: need a 3x3 matrix, got shape {r.shape}")
    cos_pitch = math.hypot(float(r[0, 0]), float(r[1, 0]))
    pitch = math.atan2(-float(r[2, 0]), cos_pitch)
    if cos_pitch < 1e-9:
        return 0.0, pitch, math.atan2(-float(r[0, 1]), float(r[1, 1]))
    roll = math.atan2(float(r[2, 1]), float(r[2, 2]))
    yaw = math.atan2(float(r[1, 0]), float(r[0, 0]))
    return roll, pitch, yaw


def pose3d_from_matrix(rotation: FloatArray, translation: FloatArray) -> Pose3D:
    """A ``Pose3D`` from a 3x3 rotation (child axes in the parent) and a 3-vector translation (m)."""
    t = np.asarray(translation, dtype=np.float64).reshape(-1)
    if t.shape != (3,):
        raise ValueError(f"pose3d_from_matrix: need a 3-vector translation, got shape {t.shape}")
    roll, pitch, yaw = rotation_to_rpy(rotation)
    return Pose3D(float(t[0]), float(t[1]), float(t[2]), roll, pitch, yaw)


def quad_pixel_size_px(quads: FloatArray) -> FloatArray:
    """Square root of each quad's area (shoelace), px. ``quads`` is (n, 4, 2); returns (n,)."""
    x = quads[..., 0]
    y = quads[..., 1]
    area = 0.5 * np.abs(np.sum(x * y[..., _NEXT] - x[..., _NEXT] * y, axis=-1))
    return np.asarray(np.sqrt(area), dtype=np.float64)


def _undistort_px(points: FloatArray, camera_matrix: FloatArray, distortion: FloatArray) -> FloatArray:
    """Raw (distorted) pixel coordinates (..., 2) -> ideal pinhole pixel coordinates (..., 2)."""
    flat = np.ascontiguousarray(points.reshape(-1, 1, 2), dtype=np.float64)
    und = cv2.undistortPoints(flat, camera_matrix, distortion, P=camera_matrix)
    return np.asarray(und, dtype=np.float64).reshape(points.shape)


def _distort_px(points: FloatArray, camera_matrix: FloatArray, distortion: FloatArray) -> FloatArray:
    """Ideal pinhole pixel coordinates (..., 2) -> raw (distorted) pixel coordinates (..., 2)."""
    flat = points.reshape(-1, 2)
    normalised = np.linalg.solve(camera_matrix, np.vstack([flat.T, np.ones(flat.shape[0])])).T
    zero = np.zeros(3, dtype=np.float64)
    raw, _ = cv2.projectPoints(np.ascontiguousarray(normalised), zero, zero, camera_matrix, distortion)
    return np.asarray(raw, dtype=np.float64).reshape(points.shape)


def _remap_float(
    gray: npt.NDArray[np.float32] | npt.NDArray[np.uint8],
    map_x: npt.NDArray[np.float32],
    map_y: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    """Bilinear samples of ``gray`` at (map_x, map_y) as float32 (border replicated). A uint8 image is not
    converted whole: only the box the samples (and their bilinear neighbours) fall in is, so the result is
    the same as sampling a float32 copy of the whole frame, at a fraction of the cost."""
    if gray.dtype == np.float32:
        return np.asarray(cv2.remap(gray, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    h, w = gray.shape[:2]
    x0 = min(max(math.floor(float(map_x.min())) - 1, 0), w - 1)
    y0 = min(max(math.floor(float(map_y.min())) - 1, 0), h - 1)
    x1 = max(min(math.ceil(float(map_x.max())) + 2, w), x0 + 1)
    y1 = max(min(math.ceil(float(map_y.max())) + 2, h), y0 + 1)
    patch = np.asarray(gray[y0:y1, x0:x1], dtype=np.float32)
    return np.asarray(
        cv2.remap(
            patch, map_x - np.float32(x0), map_y - np.float32(y0), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    )


def refine_corners_by_edges(
    gray: npt.NDArray[np.float32] | npt.NDArray[np.uint8],
    quads: FloatArray,
    camera_matrix: FloatArray | None = None,
    distortion: FloatArray | None = None,
    *,
    search_modules: float = 0.5,
    max_move_px: float = 1.5,
) -> FloatArray:
    """Refine tag corners by fitting a line to each side of the black border and intersecting them.

    ``quads`` is (n, 4, 2) in OpenCV pixel coordinates (pixel centres at integers), in the detector's
    order (clockwise in the image). For every side, 24 points between 15 % and 85 % of its length each
    sample an intensity profile along the outward normal over +-w (w = half a module, clamped to
    [1, 3] px), normalised between its inner (black border) and outer (white quiet zone) levels; the
    edge is placed where a step with the same area under the profile would be. A weighted
    total-least-squares line is fitted to each side's edge points (weight = local contrast; low-contrast
    points, e.g. occluded, get 0) and adjacent lines are intersected. A quad whose refinement fails (no
    contrast, parallel lines, a corner moving further than max(1.5 px, 0.5 module)) keeps its input
    corners. Fully vectorised over tags and samples.

    With lens distortion (``camera_matrix`` and non-zero ``distortion`` given) straight edges are curved
    in the raw image: the edge points are undistorted before the line fit and the intersections are
    distorted back, so the returned corners are always raw-image pixels.
    """
    q = np.asarray(quads, dtype=np.float64)
    n = q.shape[0]
    if n == 0:
        return q.copy()
    p0 = q
    seg = q[:, _NEXT] - p0  # (n, 4, 2) side vectors
    length = np.sqrt(np.sum(seg * seg, axis=2))  # (n, 4)
    if np.any(length < 1e-6):
        bad = np.any(length < 1e-6, axis=1)
        out = q.copy()
        if np.any(~bad):
            out[~bad] = refine_corners_by_edges(
                gray, q[~bad], camera_matrix, distortion, search_modules=search_modules, max_move_px=max_move_px
            )
        return out
    map_x, map_y, base, nrm, half_width, module = _kernels.sample_points(
        q, _EDGE_T, _EDGE_S, float(search_modules), 3.0 * max(1.0, 2.0 * float(search_modules))
    )
    # One row per sample line (n * 4 * M rows of S samples): a single-row map would exceed remap's
    # 32767-column limit from 14 tags on.
    sampled = _remap_float(gray, map_x, map_y)
    prof = np.asarray(sampled, dtype=np.float64).reshape(n, 4, _EDGE_T.size, _EDGE_S.size)
    # Edge position from the area under the normalised profile q (0 inside, 1 outside): for a step at
    # s_e, integral_{-1}^{1} q ds = 1 - s_e (in units of w). Unlike a 50 % crossing interpolated between
    # samples this stays unbiased on sharp (box-filtered, 1 px wide) edges whatever their pixel phase.
    edge_pts, weight = _kernels.edge_points(prof, base, nrm, half_width, float(_EDGE_S[1] - _EDGE_S[0]))
    distorted = camera_matrix is not None and distortion is not None and bool(np.any(distortion != 0.0))
    if distorted and camera_matrix is not None and distortion is not None:
        edge_pts = _undistort_px(edge_pts, camera_matrix, distortion)
    refined, ok = _kernels.fit_corners(np.ascontiguousarray(edge_pts, dtype=np.float64), weight)
    if distorted and camera_matrix is not None and distortion is not None:
        refined = np.where(ok[:, None, None], refined, 0.0)
        refined = _distort_px(refined, camera_matrix, distortion)

    step = refined - q
    moved = np.sqrt(np.sum(step * step, axis=2)).max(axis=1)
    ok &= moved <= np.maximum(max_move_px, search_modules * module)
    ok &= np.all(np.isfinite(refined), axis=(1, 2))
    return np.where(ok[:, None, None], refined, q)


def warm_up() -> None:
    """Compile (or load from numba's cache) the edge-refinement kernels on a tiny image, so no compile time
    lands in the first camera frame: about 8 s the first time on a machine (then cached), about 1 s to load
    the cache in a new process. Call it once at start-up, before the control loop."""
    square = np.zeros((48, 48), dtype=np.uint8)
    square[8:40, 8:40] = 255
    square[12:36, 12:36] = 0
    quad = np.array([[[8.0, 8.0], [40.0, 8.0], [40.0, 40.0], [8.0, 40.0]]])
    refine_corners_by_edges(square, quad)


def _unchanged(quads: FloatArray) -> FloatArray:
    return quads


def _distinct_quads(quads: FloatArray, tolerance_px: float = 1.5) -> FloatArray:
    """Drop quads (n, 4, 2) whose corners all lie within ``tolerance_px`` of an earlier quad's corners in
    some cyclic order (the same quad traced by several threshold passes)."""
    n = quads.shape[0]
    if n < 2:
        return quads
    shifted = quads[:, _CYCLIC]  # (n, 4 shifts, 4, 2)
    diff = quads[:, None, None] - shifted[None]
    dist = np.sqrt(np.sum(diff * diff, axis=-1)).max(axis=-1).min(axis=-1)  # (n, n)
    repeat = np.tril(dist <= tolerance_px, k=-1).any(axis=1)
    return np.asarray(quads[~repeat], dtype=np.float64)


def _tag36h11_codes() -> npt.NDArray[np.uint64]:
    """The 587 AprilTag 36h11 codes in the 4 rotations as 36-bit integers, (587 * 4,): entry ``4 id + r`` is
    the code's 6x6 data bits (1 = white) rotated by ``np.rot90`` r times, row-major, first bit most
    significant."""
    dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
    byte_list = np.asarray(dictionary.bytesList)
    bits = np.zeros((byte_list.shape[0], 4, 36), dtype=np.uint8)
    for i in range(byte_list.shape[0]):
        grid = np.asarray(cv2.aruco.Dictionary.getBitsFromByteList(np.ascontiguousarray(byte_list[i : i + 1]), 6))
        for r in range(4):
            bits[i, r] = np.rot90(grid, r).reshape(-1)
    return _pack_bits(bits.reshape(-1, 36))


def _pack_bits(bits: npt.NDArray[np.uint8] | npt.NDArray[np.bool_]) -> npt.NDArray[np.uint64]:
    """Rows of 36 bits (n, 36) -> (n,) uint64, first bit most significant."""
    weights = np.left_shift(np.uint64(1), np.arange(35, -1, -1, dtype=np.uint64))
    return np.asarray((bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64), dtype=np.uint64)


_CODES: npt.NDArray[np.uint64] | None = None
# Cell sampling for ``decode_tag36h11``: 3 x 3 points in each of the 8 x 8 modules (module units).
_CELL_SUB = np.array([0.3, 0.5, 0.7])
_GY, _GX = np.mgrid[0:8, 0:8]
_SAMPLE_X = np.broadcast_to(_GX.reshape(64, 1, 1) + _CELL_SUB[None, None, :], (64, 3, 3)).reshape(-1)
_SAMPLE_Y = np.broadcast_to(_GY.reshape(64, 1, 1) + _CELL_SUB[None, :, None], (64, 3, 3)).reshape(-1)
_BORDER = ((_GX == 0) | (_GX == 7) | (_GY == 0) | (_GY == 7)).reshape(64)
_SAMPLE_H = np.stack([_SAMPLE_X, _SAMPLE_Y, np.ones(_SAMPLE_X.size)])  # (3, 576) homogeneous
_KERNEL_3 = np.ones((3, 3), dtype=np.uint8)
_KERNEL_13 = np.ones((13, 13), dtype=np.uint8)
_UNIT_SQUARE = np.array([[0.0, 0.0], [8.0, 0.0], [8.0, 8.0], [0.0, 8.0]], dtype=np.float32)


def _module_values(gray: npt.NDArray[np.uint8], quads: FloatArray) -> FloatArray:
    """Mean grey level of each of the 8 x 8 modules of each quad (n, 4, 2) -> (n, 64), row-major from the
    quad's first corner: homography from the module square to the quad, 3 x 3 bilinear samples per module,
    one ``cv2.remap`` for all quads."""
    n = quads.shape[0]
    homographies = np.stack([cv2.getPerspectiveTransform(_UNIT_SQUARE, quad.astype(np.float32)) for quad in quads])
    w = homographies @ _SAMPLE_H  # (n, 3, 576)
    map_x = np.ascontiguousarray(w[:, 0] / w[:, 2], dtype=np.float32)
    map_y = np.ascontiguousarray(w[:, 1] / w[:, 2], dtype=np.float32)
    sampled = cv2.remap(gray, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(np.asarray(sampled, dtype=np.float64).reshape(n, 64, -1).mean(axis=-1), dtype=np.float64)


def _module_bits(cells: FloatArray) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64], FloatArray]:
    """Module values (n, 64) -> bits (white = True) by an Otsu split of each quad's 64 values, the number of
    white border modules (n,) and the values' standard deviation (n,)."""
    n = cells.shape[0]
    ordered = np.sort(cells, axis=1)
    csum = np.cumsum(ordered, axis=1)
    k = np.arange(1, 64, dtype=np.float64)[None, :]
    mean_lo = csum[:, :-1] / k
    mean_hi = (csum[:, -1:] - csum[:, :-1]) / (64.0 - k)
    split = np.argmax(k * (64.0 - k) * (mean_lo - mean_hi) ** 2, axis=1)
    rows = np.arange(n)
    threshold = 0.5 * (ordered[rows, split] + ordered[rows, split + 1])
    bits = cells > threshold[:, None]
    return bits, np.asarray(bits[:, _BORDER].sum(axis=1), dtype=np.int64), np.asarray(cells.std(axis=1))


def plausible_tag_quads(
    gray: npt.NDArray[np.uint8], quads: FloatArray, max_border_errors: int = 12, min_cell_std: float = 5.0
) -> npt.NDArray[np.bool_]:
    """Cheap pre-test of candidate quads (n, 4, 2) before corner refinement: True where the modules' grey
    levels spread by at least ``min_cell_std`` and at most ``max_border_errors`` of the 28 border modules
    are white (the black border is mostly there). Sunlit gravel's stone-shaped quads mostly fail it."""
    q = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2)
    if q.shape[0] == 0:
        return np.zeros(0, dtype=np.bool_)
    _, border_errors, spread = _module_bits(_module_values(gray, q))
    return np.asarray((spread >= min_cell_std) & (border_errors <= max_border_errors), dtype=np.bool_)


def decode_tag36h11(
    gray: npt.NDArray[np.uint8],
    quads: FloatArray,
    max_bit_errors: int = 5,
    max_border_errors: int = 12,
    min_cell_std: float = 5.0,
) -> tuple[FloatArray, list[int]]:
    """Decode AprilTag 36h11 ids of candidate quads (n, 4, 2), vectorised over quads.

    Per quad: homography from the 8 x 8 module square to the quad; 3 x 3 bilinear samples in each module
    (one ``cv2.remap`` for all quads); module value = mean of its samples; Otsu threshold over the 64 module
    values; reject if their std < ``min_cell_std`` grey levels or more than ``max_border_errors`` border
    modules are white (OpenCV's defaults: 5 and 0.35 x 36); Hamming distance of the 36 data bits to every
    code in every rotation (one matrix product); accept the nearest if it is <= ``max_bit_errors``.
    Returns the accepted quads with their corners rolled to the code's orientation (OpenCV's corner order:
    the tag's top-left first) and their ids, in input order. Duplicates (same id, centres within half a tag)
    are kept once: the first, unless a later one is more than 8 % larger (an inner trace of a tag's border can
    decode too; then the outer one is kept).
    Why not OpenCV's own lookup: in OpenCV 5 ``detectMarkers`` spends about 1 ms per candidate quad looking
    it up in the 587-code dictionary, and sunlit gravel gives dozens of candidates per image."""
    global _CODES
    q = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2)
    n = q.shape[0]
    if n == 0:
        return q.copy(), []
    if _CODES is None:
        _CODES = _tag36h11_codes()
    codes = _CODES
    cells = _module_values(gray, q)
    bits, border_errors, spread = _module_bits(cells)
    rows = np.arange(n)
    data = _pack_bits(bits[:, ~_BORDER])
    # Hamming distances by XOR + popcount (no BLAS: a float matmul here stalls on a busy machine's threads)
    hamming = np.bitwise_count(np.bitwise_xor(data[:, None], codes[None, :]))  # (n, 587 * 4)
    best = np.argmin(hamming, axis=1)
    ok = (spread >= min_cell_std) & (border_errors <= max_border_errors)
    ok &= hamming[rows, best] <= max_bit_errors
    accepted = np.flatnonzero(ok)
    if accepted.size == 0:
        return np.zeros((0, 4, 2), dtype=np.float64), []
    codes_at = best[accepted]
    # roll each quad's corners to the code's orientation (np.roll by the rotation index)
    rolled = q[accepted[:, None], _CYCLIC[codes_at % 4]]  # (k, 4, 2)
    centres = rolled.mean(axis=1)
    halves = 0.5 * quad_pixel_size_px(rolled)
    ids: list[int] = []
    keep: list[int] = []
    tag_ids = (codes_at // 4).tolist()
    for j, tag_id in enumerate(tag_ids):  # accepted quads only: a handful
        same = [i for i in range(len(ids)) if ids[i] == tag_id and math.dist(centres[keep[i]], centres[j]) < halves[j]]
        if not same:
            ids.append(int(tag_id))
            keep.append(j)
        elif halves[j] > _NESTED_RATIO * halves[keep[same[0]]]:
            # a tag's black border can also be traced on its inside (nested quads) and that inner quad may
            # decode too, with corrected bits: the clearly larger, outer one is the tag
            keep[same[0]] = j
    order = sorted(range(len(keep)), key=lambda i: keep[i])  # back to the input order
    return np.asarray(rolled[[keep[i] for i in order]], dtype=np.float64), [ids[i] for i in order]


def find_tag_quads(
    gray: npt.NDArray[np.uint8],
    window_px: int = 23,
    min_pixel_size_px: float = 12.0,
    *,
    threshold_constant: float = 7.0,
    approx_rate: float = 0.04,
) -> FloatArray:
    """Candidate tag quads (n, 4, 2) in ``gray`` without ``cv2.aruco`` (the tracker's quad stage in regions).

    The same first steps as OpenCV's ArucoDetector (mean adaptive threshold over ``window_px`` with
    constant ``threshold_constant``, dark pixels set; ``cv2.findContours``), then per contour whose
    perimeter reaches 0.9 x 4 x ``min_pixel_size_px``: its convex hull, ``cv2.approxPolyDP`` at
    ``approx_rate`` x perimeter, kept if it has 4 vertices. The hull makes thin or notched borders (a data
    bit touching the black border, a 1 px wide ring) still give the outer square. Corners are returned
    clockwise in the image and pushed half a pixel outwards from each side (the contour runs through the
    centres of the dark boundary pixels; the edge lies half a pixel further out), ready for
    ``refine_corners_by_edges`` with a wide search (they are off by up to 1-2 px). Nothing is decoded here:
    most quads are not tags (``decode_tag36h11`` rejects them)."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"find_tag_quads: need a 2-D uint8 image, got {gray.dtype} {gray.shape}")
    win = int(window_px)
    if win < 3 or win % 2 == 0:
        raise ValueError(f"find_tag_quads: window_px must be odd and >= 3, got {window_px}")
    if min(gray.shape) < 3:
        return np.zeros((0, 4, 2), dtype=np.float64)
    binary = cv2.adaptiveThreshold(
        gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, win, float(threshold_constant)
    )
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    min_perimeter = 0.9 * 4.0 * float(min_pixel_size_px)
    found: list[FloatArray] = []
    for contour in contours:  # a few dozen contours per region: a loop over contours, not pixels
        if len(contour) < 4:
            continue
        perimeter = cv2.arcLength(contour, True)
        if perimeter < min_perimeter:
            continue
        approx = cv2.approxPolyDP(cv2.convexHull(contour), max(1.0, approx_rate * perimeter), True)
        if len(approx) == 4:
            found.append(np.asarray(approx, dtype=np.float64).reshape(4, 2))
    if not found:
        return np.zeros((0, 4, 2), dtype=np.float64)
    q = np.asarray(found, dtype=np.float64)
    x, y = q[..., 0], q[..., 1]
    signed = np.sum(x * y[:, _NEXT] - x[:, _NEXT] * y, axis=1)
    q[signed < 0.0] = q[signed < 0.0][:, ::-1]  # clockwise in the image (y down), as cv2.aruco returns
    out = q - q.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.sum(out * out, axis=2, keepdims=True))
    return np.asarray(q + (0.5 * math.sqrt(2.0)) * out / np.where(norm > 1e-9, norm, 1.0), dtype=np.float64)


_TEMPLATE_PX_PER_MODULE = 8


def tag_template(tag_id: int, px_per_module: int = _TEMPLATE_PX_PER_MODULE) -> npt.NDArray[np.float32]:
    """The 36h11 tag ``tag_id`` as a float32 image (black border, data bits, one module of white quiet zone
    around it), ``px_per_module`` pixels per module: (10 p, 10 p). Its border's outer corners are at
    (p - 0.5, p - 0.5), (9 p - 0.5, p - 0.5), (9 p - 0.5, 9 p - 0.5), (p - 0.5, 9 p - 0.5) (OpenCV pixel
    centres), in the detector's corner order."""
    p = int(px_per_module)
    if not 0 <= tag_id < 587 or p < 2:
        raise ValueError(f"tag_template: need a 36h11 id in [0, 587) and >= 2 px per module, got {tag_id}, {p}")
    dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
    marker = cv2.aruco.generateImageMarker(dictionary, int(tag_id), 8 * p, borderBits=1)
    padded = cv2.copyMakeBorder(marker, p, p, p, p, cv2.BORDER_CONSTANT, value=255)
    return np.asarray(padded, dtype=np.float32)


def align_to_template(
    gray: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
    quad: FloatArray,
    template: npt.NDArray[np.float32],
    *,
    iterations: int = 30,
    min_correlation: float = 0.8,
) -> FloatArray:
    """Corners (4, 2) of one decoded tag from a photometric alignment of its image ``template``
    (``tag_template``) to ``gray``: ``cv2.findTransformECC`` (enhanced correlation coefficient, a homography,
    so it is invariant to the tag's brightness and contrast), started from the homography of ``quad``, on a
    crop around the tag. Every module edge inside the tag constrains the fit, not only the four outer
    sides, which is what makes the orientation of a 40-80 px tag better: on aliased rendered tags the
    outer sides alone leave corners 0.3-0.7 px off. Returns ``quad`` unchanged when ECC does not converge,
    its correlation is below ``min_correlation``, or a corner would move by more than max(1.5 px, half a
    module). Lens distortion is ignored inside the crop (a tag covers a small part of the image)."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    p = template.shape[0] / 10.0
    src = np.array(
        [[p - 0.5, p - 0.5], [9 * p - 0.5, p - 0.5], [9 * p - 0.5, 9 * p - 0.5], [p - 0.5, 9 * p - 0.5]],
        dtype=np.float32,
    )
    side = float(quad_pixel_size_px(q[None])[0])
    module = side / _TAG_MODULES
    h, w = gray.shape[:2]
    margin = 2.0 * module + 4.0
    x0 = max(math.floor(float(q[:, 0].min()) - margin), 0)
    y0 = max(math.floor(float(q[:, 1].min()) - margin), 0)
    x1 = min(math.ceil(float(q[:, 0].max()) + margin) + 1, w)
    y1 = min(math.ceil(float(q[:, 1].max()) + margin) + 1, h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return q
    crop = np.asarray(gray[y0:y1, x0:x1], dtype=np.float32)
    offset = np.array([x0, y0], dtype=np.float64)
    start = cv2.getPerspectiveTransform(src, np.asarray(q - offset, dtype=np.float32))
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, int(iterations), 1e-4)
    try:
        correlation, warp = cv2.findTransformECC(
            template,
            crop,
            np.asarray(start, dtype=np.float32),
            cv2.MOTION_HOMOGRAPHY,
            criteria,
            np.full(crop.shape, 255, dtype=np.uint8),
            1,
        )
    except cv2.error:  # no convergence (e.g. a partly hidden tag): keep the edge-refined corners
        return q
    aligned = np.asarray(cv2.perspectiveTransform(src.reshape(-1, 1, 2), warp), dtype=np.float64).reshape(4, 2)
    aligned += offset
    moved = float(np.sqrt(np.sum((aligned - q) ** 2, axis=1)).max())
    if not (correlation >= min_correlation and np.all(np.isfinite(aligned)) and moved <= max(1.5, 0.5 * module)):
        return q
    return aligned


_DISTANCE_PX_PER_MODULE = 32
_ROWS = 1024  # remap row length for sample lists (cv2.remap needs fewer than 32767 columns)


def tag_signed_distance(tag_id: int, px_per_module: int = _DISTANCE_PX_PER_MODULE) -> npt.NDArray[np.float32]:
    """Signed distance (in template pixels) from each pixel centre of ``tag_template(tag_id, px_per_module)``
    to the nearest black/white boundary: positive on white (quiet zone, white data bits), negative on black;
    bilinear interpolation of it is zero on the module edges (exact along straight edges)."""
    white = np.asarray(tag_template(tag_id, px_per_module) > 127.5, dtype=np.uint8)
    to_black = cv2.distanceTransform(white, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    to_white = cv2.distanceTransform(1 - white, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.asarray(np.where(white > 0, to_black - 0.5, 0.5 - to_white), dtype=np.float32)


def refine_tag_pose(
    gray: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
    camera_matrix: FloatArray,
    distortion: FloatArray | None,
    rotation: FloatArray,
    translation: FloatArray,
    size_m: float,
    signed_distance: npt.NDArray[np.float32],
    *,
    corners_px: FloatArray | None = None,
    margin_px: float = 0.05,
    iterations: int = 20,
    min_contrast: float = 20.0,
    max_mid_fraction: float = 0.02,
) -> tuple[FloatArray, FloatArray, float] | None:
    """Pose of one decoded tag (``rotation``, ``translation``: tag in ``camera_optical``, IPPE's frame) refined
    so that the tag's pattern agrees with every pixel of a POINT-SAMPLED image: (R, t, final cost in px^2), or
    None.

    Each pixel of the tag and half a module of its quiet zone is classed black or white (threshold halfway
    between the dark and bright levels in the crop); its centre's ray is intersected with the tag plane
    and the tag's ``signed_distance`` map (``tag_signed_distance``) gives how far, in image pixels, the
    centre lies on the correct side of the nearest module edge. Levenberg-Marquardt on the 6 pose
    parameters minimises sum(max(0, ``margin_px`` - that distance)^2): every pixel on its own side of every
    module edge. For a renderer without anti-aliasing (the simulator's TinyRenderer: each pixel is the tag's
    colour at its centre; checked on 5 views: 0 of 4,500-12,800 tag pixels differ from the texture sampled at
    the true pose)
    this is the fit to what the image actually says, with all module edges at once. Corner-based fits
    cannot do that: each side of the black border is a staircase whose steps fix the side only to +-0.5 px
    where it is nearly parallel to a pixel axis, and line fits to a staircase of 0-1 steps overestimate its
    slope; on a 75 px tag 1 deg of tilt moves the corners by about 0.2 px (the 2.4 deg of the 1.23 m
    view in ``fiducials_gt``; 0.1 deg here). On a fronto-parallel, axis-aligned tag even this leaves
    degrees of tilt unresolved: the image does not contain them.

    Only for point-sampled images: when more than ``max_mid_fraction`` of the tag's pixels have intermediate
    grey levels (area-sampled and blurred: a real camera) it returns None, and the edge-refined pose stands.
    Also None for a crop without contrast, when the tag leaves the image, or when a fitted corner's
    projection lands more than max(1.5 px, 0.5 module) from ``corners_px`` (the detected corners, IPPE's
    order: the fit must keep the tag's outline; default: the start pose's projection). Jacobian by finite
    differences, the seven poses sampled in one ``cv2.remap``. Lens distortion: the pixel centres are
    undistorted before the ray cast."""
    r0 = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    t0 = np.asarray(translation, dtype=np.float64).reshape(3)
    p = signed_distance.shape[0] / 10.0  # template px per module
    module_m = size_m / _TAG_MODULES
    reach = 0.5 * _TAG_MODULES + 0.5  # modules from the centre: the tag and half a module of quiet zone
    half = reach * module_m
    square = np.array([[-half, half, 0.0], [half, half, 0.0], [half, -half, 0.0], [-half, -half, 0.0]])

    def project(r: FloatArray, t: FloatArray, pts: FloatArray) -> FloatArray:
        cam = pts @ r.T + t
        if np.any(cam[:, 2] <= 1e-6):
            return np.full((pts.shape[0], 2), np.nan)
        uvw = cam @ camera_matrix.T
        uv = uvw[:, :2] / uvw[:, 2:3]
        if distortion is not None:
            uv = _distort_px(uv, camera_matrix, distortion)
        return np.asarray(uv, dtype=np.float64)

    box = project(r0, t0, square)
    h, w = gray.shape[:2]
    if not np.all(np.isfinite(box)):
        return None
    x0, y0 = math.floor(float(box[:, 0].min())), math.floor(float(box[:, 1].min()))
    x1, y1 = math.ceil(float(box[:, 0].max())) + 1, math.ceil(float(box[:, 1].max())) + 1
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h or x1 - x0 < 8 or y1 - y0 < 8:
        return None
    vv, uu = np.mgrid[y0:y1, x0:x1]
    pixels = np.stack([uu.ravel(), vv.ravel()], axis=1).astype(np.float64)
    if distortion is not None:
        pixels = _undistort_px(pixels, camera_matrix, distortion)
    rays = np.linalg.solve(camera_matrix, np.vstack([pixels.T, np.ones(pixels.shape[0])]))  # (3, N)
    values = np.asarray(gray[y0:y1, x0:x1], dtype=np.float64).ravel()
    dark, bright = np.percentile(values, [5.0, 95.0])
    if bright - dark < min_contrast:
        return None
    label = np.where(values > 0.5 * (dark + bright), 1.0, -1.0)
    side_px = float(quad_pixel_size_px(box[None])[0]) / (2.0 * reach)  # image px per module
    scale = side_px / p  # image px per template px
    delta = float(margin_px)

    def margins(poses: list[tuple[FloatArray, FloatArray]], mask: npt.NDArray[np.bool_] | None) -> FloatArray:
        """(len(poses), N) margins in image px (NaN outside ``mask``, or outside the tag at poses[0])."""
        hs = np.stack([np.column_stack([r[:, 0], r[:, 1], t]) for r, t in poses])  # normalised homographies
        sel = rays if mask is None else rays[:, mask]
        plane = np.linalg.inv(hs) @ sel  # (k, 3, N) tag-plane points (homogeneous)
        mx = plane[:, 0] / (plane[:, 2] * module_m)
        my = plane[:, 1] / (plane[:, 2] * module_m)
        if mask is None:
            mask = (np.abs(mx[0]) <= reach) & (np.abs(my[0]) <= reach)
            mx, my = mx[:, mask], my[:, mask]
        n = int(mask.sum())
        cols = ((mx + 5.0) * p - 0.5).astype(np.float32).ravel()
        rows = ((5.0 - my) * p - 0.5).astype(np.float32).ravel()
        pad = (-cols.size) % _ROWS
        sampled = cv2.remap(
            signed_distance,
            np.pad(cols, (0, pad)).reshape(-1, _ROWS),
            np.pad(rows, (0, pad)).reshape(-1, _ROWS),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        dist = np.asarray(sampled, dtype=np.float64).ravel()[: cols.size].reshape(len(poses), n)
        out = np.full((len(poses), label.size), np.nan)
        out[:, mask] = label[mask] * dist * scale
        return out

    def residual(m: FloatArray) -> FloatArray:
        return np.maximum(delta - m[np.isfinite(m)], 0.0)

    eps = np.array([1e-4, 1e-4, 1e-4, 1e-5, 1e-5, 1e-5])

    def perturbed(r: FloatArray, t: FloatArray, d: FloatArray) -> tuple[FloatArray, FloatArray]:
        return np.asarray(cv2.Rodrigues(d[:3])[0], dtype=np.float64) @ r, t + d[3:]

    r_cur, t_cur = r0, t0
    base = margins([(r_cur, t_cur)], None)[0]
    mask = np.isfinite(base)
    if not np.any(mask):
        return None
    # The model holds only for a point-sampled image (hard edges). A camera's pixels integrate over their area
    # and the lens blurs, so its edge pixels take intermediate levels (6-20 % of a tag's pixels in the middle
    # 60 % of the range on the anti-aliased test renders, none on the simulator's), and near module corners
    # the half-level class is not the colour at the pixel centre: the fit would be biased (median 1.3 deg on
    # anti-aliased renders whose edge-refined corners give 0.1 deg). Such images are left alone.
    inner = values[mask]
    spread = bright - dark
    mid = (inner > dark + 0.2 * spread) & (inner < bright - 0.2 * spread)
    if float(np.mean(mid)) > max_mid_fraction:
        return None
    # only pixels within a few px of an edge on their own side (or on the wrong side) can change the cost
    # in one step: the others are left out of each iteration's evaluations (re-selected every iteration)
    band = 3.0
    mask &= base < band
    res = residual(base)
    cost = float(res @ res)
    damping = 1e-3
    for _ in range(int(iterations)):
        poses = [(r_cur, t_cur)] + [perturbed(r_cur, t_cur, np.eye(6)[j] * eps[j]) for j in range(6)]
        m = margins(poses, mask)
        res = np.maximum(delta - m[0, mask], 0.0)
        jac = (np.maximum(delta - m[1:, mask], 0.0) - res).T / eps  # (N, 6)
        a = jac.T @ jac
        g = jac.T @ res
        improved = False
        for _ in range(6):
            step = -np.linalg.solve(a + damping * np.diag(np.diag(a)) + 1e-12 * np.eye(6), g)
            r_new, t_new = perturbed(r_cur, t_cur, step)
            res_new = residual(margins([(r_new, t_new)], mask)[0])
            if float(res_new @ res_new) < cost:
                r_cur, t_cur, cost = r_new, t_new, float(res_new @ res_new)
                damping *= 0.3
                improved = True
                break
            damping *= 10.0
        if not improved or float(np.abs(step).max()) < 1e-8:
            break
        base = margins([(r_cur, t_cur)], None)[0]  # pixels entering / leaving the tag
        mask = np.isfinite(base) & (base < band)
        res = residual(base)
        cost = float(res @ res)
    corners = np.array([[-1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, -1.0, 0.0], [-1.0, -1.0, 0.0]]) * (0.5 * size_m)
    reference = project(r0, t0, corners) if corners_px is None else np.asarray(corners_px, dtype=np.float64)
    moved = np.sqrt(np.sum((project(r_cur, t_cur, corners) - reference.reshape(4, 2)) ** 2, axis=1)).max()
    if not (math.isfinite(float(moved)) and moved <= max(1.5, 0.5 * side_px)):
        return None
    return r_cur, t_cur, cost


def aruco_parameters(threshold_windows_px: tuple[int, ...]) -> cv2.aruco.DetectorParameters:
    """``DetectorParameters`` whose adaptive-threshold passes use exactly these window sizes (odd, >= 3 px).

    OpenCV runs one thresholding + contour pass per window size (min, min + step, ..., max): its default
    (3, 13, 23) costs three passes; one pass costs about a quarter of the time on 640x480 frames. On the
    rendered mission frames one 23 px pass found as many tags as the default on clean, shadowed and dusty
    frames and twice as many on 7 px motion-blurred ones; one 7 px pass loses almost every blurred tag.
    The sizes must form an arithmetic progression (OpenCV's min/max/step).
    """
    windows = tuple(int(w) for w in threshold_windows_px)
    if not windows or any(w < 3 or w % 2 == 0 for w in windows):
        raise ValueError(f"aruco_parameters: threshold windows must be odd and >= 3 px, got {threshold_windows_px}")
    steps = {b - a for a, b in itertools.pairwise(windows)}
    if len(steps) > 1 or any(d <= 0 for d in steps):
        raise ValueError(f"aruco_parameters: threshold windows must be increasing, evenly spaced: {windows}")
    params = cv2.aruco.DetectorParameters()
    params.adaptiveThreshWinSizeMin = windows[0]
    params.adaptiveThreshWinSizeMax = windows[-1]
    params.adaptiveThreshWinSizeStep = steps.pop() if steps else 10
    return params


def real_camera_fiducial_detector(
    info: CameraInfo,
    tag_sizes_m: Mapping[int, float] | float,
    *,
    error_correction_rate: float = 1.0,
    fast_decode: bool = True,
    quad_search_min_contrast: float = 80.0,
) -> FiducialDetector:
    """The profile for real cameras (sunlit outdoor photos with small tags), where the sim profile (one 23 px
    window) misses a third of the 12-20 px tags. Measured on the NASA Swarmathon photos (targets/bench_realdata):
    three adaptive-threshold windows (13, 23, 33: OpenCV's default 3 px window finds nothing more here and is
    the most expensive pass, with thousands of tiny contours), an unsharp mask (0.5) before quad search and
    decoding, up to 5 corrected bits (``error_correction_rate`` 1.0; 0.8 = 4 bits trades a tag or two for a
    lower chance of a false id), small tags kept with their position even when their orientation is ambiguous.

    ``fast_decode`` (default): OpenCV only traces quads; each is edge-refined and decoded by
    ``decode_tag36h11`` (OpenCV 5's own dictionary lookup costs about 1 ms per candidate quad, and gravel
    gives dozens). ``quad_search_min_contrast`` (80 grey levels): the quad search skips regions without any
    strong edge (``FiducialDetector._flattened``). Both together: 3-4x faster on these photos than OpenCV's
    decoding with the same parameters, same 46/47 tags and corners. With ``fast_decode=False`` bits are
    decoded by OpenCV from 6 px per module (``decode_px_per_module``)."""
    return FiducialDetector(
        info,
        tag_sizes_m,
        min_pixel_size_px=10.0,
        keep_ambiguous=True,
        threshold_windows_px=(13, 23, 33),
        decode_px_per_module=6,
        error_correction_rate=error_correction_rate,
        decode_sharpening=0.5,
        fast_decode=fast_decode,
        quad_search_min_contrast=quad_search_min_contrast,
    )


class FiducialDetector:
    """Detects AprilTag 36h11 tags in camera frames and returns their poses in ``base_link``.

    ``tag_sizes_m`` is either one side length (m, outer edge of the black border) for every tag, or a map
    id -> side length; with a map, tags whose id is not in it are dropped. Tags whose pixel size (square
    root of the quad's area) is below ``min_pixel_size_px`` are dropped. A tag smaller than
    ``ambiguity_max_pixel_size_px`` whose two IPPE solutions fit almost equally well (best / second
    reprojection error above ``ambiguity_ratio``) is dropped as ambiguous.

    ``corner_sigma_px`` is the assumed 1-sigma corner noise and ``min_position_sigma_m`` the floor of the
    position sigma; see the module docstring for the covariance model.

    ``fast_decode``: OpenCV traces quads only (one-code dictionary, nested quads kept); repeats are dropped,
    quads failing ``plausible_tag_quads`` skipped, the rest edge-refined and decoded by ``decode_tag36h11``
    with ``int(5 error_correction_rate)`` corrected bits (``decode_px_per_module`` is then unused).
    ``quad_search_min_contrast`` > 0 (grey levels, with ``fast_decode``): the quad search skips regions
    without a strong edge (``_flattened``).

    ``align_template_min_px`` (None = off): tags of at least this many pixels get their corners from a
    photometric alignment of the tag's own image (``align_to_template``) after the edge refinement. It
    costs about 0.5 ms per tag and is for accurate orientation (1-2 m: max rotation error 6.0 -> 2.4 deg
    on the rendered views); the estimator uses only the tag position, so the rover does not enable it.

    ``refine_pose_min_px`` (None = off): unambiguous tags of at least this many pixels get their pose from
    ``refine_tag_pose`` (started from each IPPE solution, the better fit kept) when the image is
    point-sampled, as the simulator renders (rendered views, 640x480, 1-2 m: max rotation error 6.0 deg ->
    0.13 deg, position 0.88 -> 0.06 cm); on images with graded edges (a camera) it changes nothing. About
    13 ms per tag at 640x480.
    """

    def __init__(
        self,
        info: CameraInfo,
        tag_sizes_m: Mapping[int, float] | float,
        min_pixel_size_px: float = 12.0,
        *,
        corner_sigma_px: float = 0.5,
        min_position_sigma_m: float = 0.01,
        ambiguity_ratio: float = 0.7,
        ambiguity_max_pixel_size_px: float = 24.0,
        refine_edges: bool = True,
        keep_ambiguous: bool = False,
        align_template_min_px: float | None = None,
        refine_pose_min_px: float | None = None,
        threshold_windows_px: tuple[int, ...] = (3, 13, 23),
        decode_px_per_module: int = 4,
        error_correction_rate: float = 0.6,
        decode_sharpening: float = 0.0,
        fast_decode: bool = False,
        quad_search_min_contrast: float = 0.0,
    ) -> None:
        if isinstance(tag_sizes_m, Mapping):
            sizes = {int(k): float(v) for k, v in tag_sizes_m.items()}
            for tag_id, size in sizes.items():
                if not (math.isfinite(size) and size > 0.0):
                    raise ValueError(f"FiducialDetector: tag {tag_id} size must be > 0 m, got {size}")
            self._sizes: dict[int, float] | None = sizes
            self._default_size_m = 0.0
        else:
            size = float(tag_sizes_m)
            if not (math.isfinite(size) and size > 0.0):
                raise ValueError(f"FiducialDetector: tag size must be > 0 m, got {size}")
            self._sizes = None
            self._default_size_m = size
        if not (math.isfinite(min_pixel_size_px) and min_pixel_size_px >= 4.0):
            raise ValueError(f"FiducialDetector: min_pixel_size_px must be >= 4, got {min_pixel_size_px}")
        if not corner_sigma_px > 0.0:
            raise ValueError(f"FiducialDetector: corner_sigma_px must be > 0, got {corner_sigma_px}")
        if not min_position_sigma_m >= 0.0:
            raise ValueError(f"FiducialDetector: min_position_sigma_m must be >= 0, got {min_position_sigma_m}")
        if not 0.0 <= ambiguity_ratio <= 1.0:
            raise ValueError(f"FiducialDetector: ambiguity_ratio must be in [0, 1], got {ambiguity_ratio}")
        if not (isinstance(decode_px_per_module, int) and 2 <= decode_px_per_module <= 16):
            raise ValueError(
                f"FiducialDetector: decode_px_per_module must be an int in [2, 16], got {decode_px_per_module}"
            )
        if not 0.0 <= error_correction_rate <= 1.0:
            raise ValueError(f"FiducialDetector: error_correction_rate must be in [0, 1], got {error_correction_rate}")
        if not (math.isfinite(decode_sharpening) and 0.0 <= decode_sharpening <= 4.0):
            raise ValueError(f"FiducialDetector: decode_sharpening must be in [0, 4], got {decode_sharpening}")

        self._info = info
        self._min_pixel_size_px = float(min_pixel_size_px)
        self._corner_sigma_px = float(corner_sigma_px)
        self._min_sigma_m = float(min_position_sigma_m)
        self._ambiguity_ratio = float(ambiguity_ratio)
        self._ambiguity_px = float(ambiguity_max_pixel_size_px)
        self._refine = bool(refine_edges)
        if align_template_min_px is not None and not (
            math.isfinite(align_template_min_px) and align_template_min_px >= 8.0
        ):
            raise ValueError(
                f"FiducialDetector: align_template_min_px must be >= 8 px or None, got {align_template_min_px}"
            )
        self._align_min_px = align_template_min_px
        self._templates: dict[int, npt.NDArray[np.float32]] = {}
        if refine_pose_min_px is not None and not (math.isfinite(refine_pose_min_px) and refine_pose_min_px >= 8.0):
            raise ValueError(f"FiducialDetector: refine_pose_min_px must be >= 8 px or None, got {refine_pose_min_px}")
        self._refine_pose_min_px = refine_pose_min_px
        self._distance_maps: dict[int, npt.NDArray[np.float32]] = {}
        self._keep_ambiguous = bool(keep_ambiguous)
        self._sharpening = float(decode_sharpening)
        self._blur: npt.NDArray[np.uint8] | None = None
        self._sharp: npt.NDArray[np.uint8] | None = None
        self._camera_matrix = info.matrix()
        self._focal_px = 0.5 * (info.fx_px + info.fy_px)
        dist = np.asarray(info.distortion, dtype=np.float64).reshape(-1)
        self._distortion: FloatArray | None = dist if np.any(dist != 0.0) else None

        self._params = aruco_parameters(threshold_windows_px)
        params = self._params
        params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        params.relativeCornerRefinmentWinSize = 0.5
        params.perspectiveRemovePixelPerCell = int(decode_px_per_module)
        params.errorCorrectionRate = float(error_correction_rate)
        # perimeter >= 4 sqrt(area) for any quad, so this drops nothing we would keep.
        params.minMarkerPerimeterRate = 0.9 * 4.0 * self._min_pixel_size_px / max(info.width_px, info.height_px)
        self._dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
        self._detector = cv2.aruco.ArucoDetector(self._dictionary, params)
        # Fast decoding (see ``decode_tag36h11``): OpenCV only traces and filters quads (with a one-code
        # dictionary, so its slow per-candidate lookup is nearly free); every quad is decoded here.
        self._fast_decode = bool(fast_decode)
        self._max_bit_errors = int(5 * float(error_correction_rate))
        self._prefilter_border_errors = 12
        if not (math.isfinite(quad_search_min_contrast) and 0.0 <= quad_search_min_contrast <= 255.0):
            raise ValueError(
                f"FiducialDetector: quad_search_min_contrast must be in [0, 255], got {quad_search_min_contrast}"
            )
        self._min_contrast = float(quad_search_min_contrast)
        self._flat: npt.NDArray[np.uint8] | None = None
        if self._fast_decode:
            one = cv2.aruco.Dictionary(np.ascontiguousarray(self._dictionary.bytesList[:1]), 6, 5)
            # OpenCV groups quads whose corners are closer than minMarkerDistanceRate x perimeter and returns one
            # per group among the rejected; its 0.125 merges a tag with its white quiet zone (corners 0.04
            # perimeter apart), so the tag was lost. 0.02 keeps them apart and still merges the repeats of one
            # quad from the three threshold passes (``_distinct_quads`` drops any left).
            params.minMarkerDistanceRate = 0.02
            self._detector = cv2.aruco.ArucoDetector(one, params)

    @property
    def info(self) -> CameraInfo:
        return self._info

    def tag_size_m(self, tag_id: int) -> float | None:
        """The side length used for ``tag_id`` (m), or None when the id is unknown."""
        if self._sizes is None:
            return self._default_size_m
        return self._sizes.get(tag_id)

    def detect(self, frame: CameraFrame) -> list[FiducialObservation]:
        """All known, large enough, unambiguous tags in ``frame``, ordered by tag id."""
        if frame.info != self._info:
            raise ValueError(
                f"FiducialDetector.detect: frame from camera {frame.camera_id!r} has CameraInfo "
                f"{frame.info}, but this detector was built for {self._info}"
            )
        gray = np.asarray(cv2.cvtColor(frame.image_bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        search = self._sharpened(gray)
        if self._fast_decode:
            corners, _, rejected = self._detector.detectMarkers(self._flattened(search))
            everything = list(corners) + list(rejected)
            if not everything:
                return []
            cand = np.asarray(everything, dtype=np.float64).reshape(-1, 4, 2)
            cand = _distinct_quads(cand[quad_pixel_size_px(cand) >= self._min_pixel_size_px - 1.0])
            cand = cand[plausible_tag_quads(search, cand, self._prefilter_border_errors)]
            if self._refine:
                # Contour corners are off by up to a pixel, which flips bits of 12-20 px tags: refine first,
                # decode on the refined quads, and keep them (no second refinement).
                cand = refine_corners_by_edges(gray, cand, self._camera_matrix, self._distortion)
            quads, tag_ids = decode_tag36h11(search, cand, self._max_bit_errors)
            return self._observations(frame, gray, quads, tag_ids, refine=_unchanged)
        else:
            corners, ids, _ = self._detector.detectMarkers(search)
            if ids is None or len(corners) == 0:
                return []
            quads = np.asarray(corners, dtype=np.float64).reshape(-1, 4, 2)
            tag_ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        return self._observations(frame, np.asarray(gray, dtype=np.uint8), quads, tag_ids)

    @property
    def fast_decode(self) -> bool:
        """Whether quads are decoded by ``decode_tag36h11`` (OpenCV only traces them)."""
        return self._fast_decode

    def _flattened(self, search: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """The image OpenCV's quad search sees with ``quad_search_min_contrast`` > 0: pixels farther than 6 px
        from any pixel whose 3 x 3 grey-level range (morphological gradient) reaches the threshold are replaced
        by a 31 x 31 box mean, so the adaptive threshold makes no contours there. A tag's black/white edges
        are far above the threshold; sunlit gravel's faint texture, most of the image, is below it and was
        most of the contour tracing. Modules wider than 12 px keep their edge bands (the border's outer
        contour stays whole). Decoding and corner refinement use the unflattened image."""
        if self._min_contrast <= 0.0:
            return search
        gradient = cv2.morphologyEx(search, cv2.MORPH_GRADIENT, _KERNEL_3)
        _, strong = cv2.threshold(gradient, math.ceil(self._min_contrast) - 1, 255, cv2.THRESH_BINARY)
        mask = cv2.dilate(strong, _KERNEL_13)
        if self._flat is None or self._flat.shape != search.shape:
            self._flat = np.empty_like(search)
        cv2.blur(search, (31, 31), dst=self._flat)
        cv2.copyTo(search, mask, self._flat)
        return self._flat

    def _sharpened(self, gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """The image the quad search and bit decoding see: ``gray`` itself, or with ``decode_sharpening`` > 0
        an unsharp mask ``(1 + a) gray - a blur_sigma1(gray)`` (like AprilTag 3's decode_sharpening), which
        restores the contrast of 1-2 px modules on small tags. Buffers are allocated once and reused. Corner
        refinement always uses the unsharpened image (sharpening moves edges' intensity profiles)."""
        if self._sharpening <= 0.0:
            return gray
        blur, sharp = self._blur, self._sharp
        if blur is None or sharp is None or blur.shape != gray.shape:
            blur = self._blur = np.empty_like(gray)
            sharp = self._sharp = np.empty_like(gray)
        cv2.GaussianBlur(gray, (0, 0), 1.0, dst=blur)
        cv2.addWeighted(gray, 1.0 + self._sharpening, blur, -self._sharpening, 0.0, dst=sharp)
        return sharp

    def _observations(
        self,
        frame: CameraFrame,
        gray: npt.NDArray[np.uint8] | npt.NDArray[np.float32] | None,
        quads: FloatArray,
        tag_ids: list[int],
        refine: Callable[[FloatArray], FloatArray] | None = None,
    ) -> list[FiducialObservation]:
        """Size filter, edge refinement (on ``gray``, or by ``refine`` when given), template alignment (when
        enabled, on ``gray``), IPPE pose, covariance."""
        if not tag_ids:
            return []
        sizes = np.array([self.tag_size_m(i) or 0.0 for i in tag_ids], dtype=np.float64)
        pixel_sizes = quad_pixel_size_px(quads)
        keep = (sizes > 0.0) & (pixel_sizes >= self._min_pixel_size_px)
        if not np.any(keep):
            return []
        quads = quads[keep]
        sizes = sizes[keep]
        pixel_sizes = pixel_sizes[keep]
        tag_ids = [i for i, k in zip(tag_ids, keep, strict=True) if k]
        if self._refine and refine is not _unchanged:
            if refine is not None:
                quads = refine(quads)
            elif gray is not None:
                quads = refine_corners_by_edges(gray, quads, self._camera_matrix, self._distortion)
            pixel_sizes = quad_pixel_size_px(quads)
        if self._align_min_px is not None and gray is not None:
            for k, tag_id in enumerate(tag_ids):
                if pixel_sizes[k] >= self._align_min_px:
                    quads[k] = align_to_template(gray, quads[k], self._template(tag_id))

        r_mount = frame.mount.rotation()
        t_mount = frame.mount.translation()
        observations: list[FiducialObservation] = []
        pose_image = gray if self._refine_pose_min_px is not None else None
        for k, tag_id in enumerate(tag_ids):
            obs = self._observe(
                frame.stamp_s,
                tag_id,
                float(sizes[k]),
                quads[k],
                float(pixel_sizes[k]),
                r_mount,
                t_mount,
                pose_image,
            )
            if obs is not None:
                observations.append(obs)
        observations.sort(key=lambda o: o.tag_id)
        return observations

    def _template(self, tag_id: int) -> npt.NDArray[np.float32]:
        """The tag's image for ``align_to_template`` (built once per id, then cached)."""
        template = self._templates.get(tag_id)
        if template is None:
            template = self._templates[tag_id] = tag_template(tag_id)
        return template

    def _distance_map(self, tag_id: int) -> npt.NDArray[np.float32]:
        """The tag's signed-distance map for ``refine_tag_pose`` (built once per id, then cached)."""
        distance = self._distance_maps.get(tag_id)
        if distance is None:
            distance = self._distance_maps[tag_id] = tag_signed_distance(tag_id)
        return distance

    def _refined_pose(
        self,
        gray: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
        tag_id: int,
        size_m: float,
        rvecs: Sequence[npt.NDArray[np.generic]],
        tvecs: Sequence[npt.NDArray[np.generic]],
        quad: FloatArray,
    ) -> tuple[FloatArray, FloatArray] | None:
        """``refine_tag_pose`` started from each IPPE solution; the one whose fit leaves the smaller cost
        (fewer pixels on the wrong side of a module edge), or None when no fit succeeded. Starting from
        both settles IPPE's two-fold tilt ambiguity by the image itself, not by four corners."""
        best: tuple[FloatArray, FloatArray, float] | None = None
        for rvec, tvec in zip(rvecs, tvecs, strict=True):
            r0 = np.asarray(cv2.Rodrigues(np.asarray(rvec, dtype=np.float64))[0], dtype=np.float64)
            fit = refine_tag_pose(
                gray,
                self._camera_matrix,
                self._distortion,
                r0,
                np.asarray(tvec, dtype=np.float64).reshape(3),
                size_m,
                self._distance_map(tag_id),
                corners_px=quad,
            )
            if fit is not None and (best is None or fit[2] < best[2]):
                best = fit
        return None if best is None else (best[0], best[1])

    def _observe(
        self,
        stamp_s: float,
        tag_id: int,
        size_m: float,
        quad: FloatArray,
        pixel_size_px: float,
        r_mount: FloatArray,
        t_mount: FloatArray,
        pose_image: npt.NDArray[np.uint8] | npt.NDArray[np.float32] | None = None,
    ) -> FiducialObservation | None:
        h = 0.5 * size_m
        # IPPE_SQUARE's required order, which is also the detector's corner order (TL, TR, BR, BL).
        object_points = np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]], dtype=np.float64)
        image_points = np.ascontiguousarray(quad.reshape(4, 1, 2), dtype=np.float64)
        n_solutions, rvecs, tvecs, errors = cv2.solvePnPGeneric(
            object_points, image_points, self._camera_matrix, self._distortion, flags=cv2.SOLVEPNP_IPPE_SQUARE
        )
        if n_solutions < 1:
            return None
        errs = np.asarray(errors, dtype=np.float64).reshape(-1)
        order = np.argsort(errs)
        best = int(order[0])
        ambiguous = False
        if n_solutions >= 2 and pixel_size_px < self._ambiguity_px:
            second = float(errs[int(order[1])])
            ratio = float(errs[best]) / second if second > 1e-12 else 1.0
            if ratio > self._ambiguity_ratio:
                if not self._keep_ambiguous:
                    return None
                ambiguous = True
        r_cam = np.asarray(cv2.Rodrigues(np.asarray(rvecs[best], dtype=np.float64))[0], dtype=np.float64)
        t_cam = np.asarray(tvecs[best], dtype=np.float64).reshape(3)
        min_px = self._refine_pose_min_px
        if pose_image is not None and min_px is not None and pixel_size_px >= min_px and not ambiguous:
            refined = self._refined_pose(
                pose_image, tag_id, size_m, list(rvecs)[:n_solutions], list(tvecs)[:n_solutions], quad
            )
            if refined is not None:
                r_cam, t_cam = refined
        range_m = float(np.linalg.norm(t_cam))
        if not (t_cam[2] > 0.0 and math.isfinite(range_m)):
            return None

        r_base = r_mount @ r_cam
        t_base = r_mount @ t_cam + t_mount
        reprojection_px = float(errs[best])
        if ambiguous:
            # The two solutions' centres differ a little: the position is their mean; the orientation is
            # the best fit's, flagged as not to be trusted.
            t_other = np.asarray(tvecs[int(order[1])], dtype=np.float64).reshape(3)
            t_cam = 0.5 * (t_cam + t_other)
            t_base = r_mount @ t_cam + t_mount
        covariance = self._position_covariance(t_cam, size_m, reprojection_px, r_mount)
        corners_px = tuple((u, v) for u, v in quad.reshape(4, 2).tolist())
        return FiducialObservation(
            stamp_s=stamp_s,
            tag_id=tag_id,
            tag_size_m=size_m,
            corners_px=corners_px,
            tag_in_base=pose3d_from_matrix(r_base, t_base),
            position_covariance_m2=covariance,
            pixel_size_px=pixel_size_px,
            reprojection_error_px=reprojection_px,
            orientation_ambiguous=ambiguous,
        )

    def _position_covariance(
        self, t_cam: FloatArray, size_m: float, reprojection_px: float, r_mount: FloatArray
    ) -> Mat2:
        """Covariance of the tag centre's (x, y) in base_link (model in the module docstring)."""
        r = float(np.linalg.norm(t_cam))
        sigma_px = max(self._corner_sigma_px, reprojection_px)
        sigma_range = sigma_px * r * r / (self._focal_px * size_m)
        sigma_across = sigma_px * r / self._focal_px
        # C_base = R (a I + b u u^T) R^T = a I + b w w^T with w = R u (R orthonormal): no 3x3 products
        a = sigma_across**2
        b = sigma_range**2 - a
        wx, wy, _ = (r_mount @ t_cam).tolist()
        wx, wy = wx / r, wy / r
        floor = self._min_sigma_m**2
        var_x = a + b * wx * wx + floor  # var_x (m^2)
        var_y = a + b * wy * wy + floor  # var_y (m^2)
        cov_xy = b * wx * wy  # cov_xy (m^2)
        return ((var_x, cov_xy), (cov_xy, var_y))
