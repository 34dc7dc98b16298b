"""Real-image fiducial check (issue 9 item 1): the project's detector on the NASA Swarmathon photos.

Data: ``apriltag-swarmathon/`` in the shared data folder (``$REGOLITH_DATA``, default ``../shared/data``):
three 799x533 photos of AprilTag 36h11 cubes in sunlight, each with a ``.txt`` of the AprilTag 3 reference
detector's output (``ID, (x0 y0), (x1 y1), (x2 y2), (x3 y3)`` a line; 47 tags in all).

For each detector on the same grey images (one thread): recall against the reference; false ids (a detection
at a reference tag's place with another id, or with an id the photo does not show); extra detections (an id
the photo shows where the reference has nothing: on these photos, real tags on cube faces the reference
missed, checked by eye); corner error in px (reference moved to OpenCV's pixel convention, see
``APRILTAG_TO_OPENCV_PX``; a detection's corners are matched to the reference's by the best cyclic shift in
either winding, so corner-order conventions do not matter); time per image (p50/p99 ms). Detectors: the
project's ``FiducialDetector`` (full ``detect``, pose included) in the real-camera profile and in the rover's
sim profile, OpenCV's ArucoDetector with defaults (DICT_APRILTAG_36h11), and pupil-apriltags (AprilTag 3,
quad_decimate=1; it finds 44 of the 47, so the reference was made with other settings; in a child process:
pupil-labs/apriltags#39).

Figures are wall time on a shared machine: compare the ratios measured in the same run.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from autonomy.msgs import CameraFrame, CameraInfo, Pose3D
from targets.cv_threads import one_opencv_thread

FloatArray = npt.NDArray[np.float64]
# A detection matches a reference tag when their centres are closer than this fraction of the reference's size.
_MATCH_FRACTION = 0.5
# AprilTag 3 puts the centre of pixel (0, 0) at (0.5, 0.5); OpenCV (and the project) at (0, 0). Measured here:
# the project's corners minus the raw reference are (-0.52, -0.38) px on average, pupil-apriltags' agree with the
# raw reference. Reference and pupil-apriltags corners are shifted by -0.5 px before comparison.
APRILTAG_TO_OPENCV_PX = 0.5
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True, slots=True)
class Tag:
    """One tag in one image: id and four corners (4, 2) in pixels (pixel centres at integers)."""

    tag_id: int
    corners_px: FloatArray


@dataclass(frozen=True, slots=True)
class RealImage:
    name: str
    gray: npt.NDArray[np.uint8]
    reference: tuple[Tag, ...]


def default_data_dir() -> Path:
    root = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("REGOLITH_DATA", root.parent / "shared" / "data")) / "apriltag-swarmathon"


def load_reference(path: Path) -> tuple[Tag, ...]:
    """Parse a reference ``.txt``: ``ID, (x0 y0), (x1 y1), (x2 y2), (x3 y3)`` per non-empty line. Corners are
    returned in OpenCV's convention (pixel centres at integers, see ``APRILTAG_TO_OPENCV_PX``)."""
    tags: list[Tag] = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        nums = _NUMBER.findall(line)
        if len(nums) != 9:
            raise ValueError(f"{path}:{lineno}: expected an id and 4 corners (9 numbers), got {len(nums)}: {line!r}")
        tag_id = float(nums[0])
        if tag_id != int(tag_id) or tag_id < 0:
            raise ValueError(f"{path}:{lineno}: tag id must be a non-negative integer, got {nums[0]!r}")
        corners = np.array([float(v) for v in nums[1:]], dtype=np.float64).reshape(4, 2) - APRILTAG_TO_OPENCV_PX
        tags.append(Tag(int(tag_id), corners))
    return tuple(tags)


def load_images(data_dir: Path | None = None) -> list[RealImage]:
    """Every ``*.jpg`` with a ``.txt`` beside it in ``data_dir`` (sorted by name), as grey images."""
    folder = default_data_dir() if data_dir is None else Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"Swarmathon data folder {folder} is absent (set REGOLITH_DATA)")
    images: list[RealImage] = []
    for jpg in sorted(folder.glob("*.jpg")):
        txt = jpg.with_suffix(".txt")
        if not txt.is_file():
            raise FileNotFoundError(f"{jpg}: no reference detections {txt.name} beside it")
        bgr = cv2.imread(str(jpg), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{jpg}: OpenCV cannot read this image")
        gray = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        images.append(RealImage(jpg.stem, gray, load_reference(txt)))
    if not images:
        raise FileNotFoundError(f"{folder}: no *.jpg images")
    return images


def corner_errors_px(reference: FloatArray, detected: FloatArray) -> FloatArray:
    """Per-corner distances (4,) after matching ``detected`` to ``reference`` by the cyclic shift (either
    winding) with the smallest sum of distances."""
    candidates = [
        np.linalg.norm(np.roll(quad, shift, axis=0) - reference, axis=1)
        for quad in (detected, detected[::-1])
        for shift in range(4)
    ]
    return np.asarray(min(candidates, key=lambda d: float(d.sum())), dtype=np.float64)


def compare(reference: Sequence[Tag], detected: Sequence[Tag]) -> dict[str, Any]:
    """Match detections to reference tags (greedy by centre distance, nearest first, within half the
    reference tag's size). Returns matched / false-detection / false-id counts and the corner errors."""
    ref_c = np.array([t.corners_px.mean(axis=0) for t in reference]).reshape(-1, 2)
    det_c = np.array([t.corners_px.mean(axis=0) for t in detected]).reshape(-1, 2)
    ref_size = np.array([np.sqrt(cv2.contourArea(t.corners_px.astype(np.float32))) for t in reference])
    pairs: list[tuple[float, int, int]] = []
    for i in range(len(reference)):
        for j in range(len(detected)):
            d = float(np.linalg.norm(ref_c[i] - det_c[j]))
            if d < _MATCH_FRACTION * ref_size[i]:
                pairs.append((d, i, j))
    pairs.sort()
    used_r: set[int] = set()
    used_d: set[int] = set()
    errors: list[float] = []
    false_ids = 0
    for _, i, j in pairs:
        if i in used_r or j in used_d:
            continue
        used_r.add(i)
        used_d.add(j)
        if reference[i].tag_id != detected[j].tag_id:
            false_ids += 1
            continue
        errors.extend(corner_errors_px(reference[i].corners_px, detected[j].corners_px).tolist())
    matched = len(used_r) - false_ids
    known = {t.tag_id for t in reference}
    unmatched = [detected[j] for j in range(len(detected)) if j not in used_d]
    unknown_ids = sum(1 for t in unmatched if t.tag_id not in known)
    return {
        "reference": len(reference),
        "found": matched,
        # a detection at a reference tag's place with another id, or anywhere with an id the photo does not show
        "false_ids": false_ids + unknown_ids,
        # detections with a shown id where the reference has none: on these photos, tags on cube faces the
        # reference detector missed (checked by eye), not false positives
        "extra_detections": len(unmatched) - unknown_ids,
        "corner_errors_px": errors,
    }


def _summarise(per_image: list[dict[str, Any]], times_ms: list[float]) -> dict[str, Any]:
    errors = [e for r in per_image for e in r["corner_errors_px"]]
    return {
        "found": sum(r["found"] for r in per_image),
        "reference": sum(r["reference"] for r in per_image),
        "false_ids": sum(r["false_ids"] for r in per_image),
        "extra_detections": sum(r["extra_detections"] for r in per_image),
        "corner_error_median_px": round(statistics.median(errors), 3) if errors else None,
        "corner_error_p90_px": round(float(np.percentile(errors, 90)), 3) if errors else None,
        "corner_error_max_px": round(max(errors), 3) if errors else None,
        "found_per_image": [r["found"] for r in per_image],
        "p50_ms": round(statistics.median(times_ms), 3),
        "p99_ms": round(float(np.percentile(times_ms, 99)), 3),
    }


def evaluate(images: Sequence[RealImage], detect: Callable[[RealImage], list[Tag]], repeats: int = 3) -> dict[str, Any]:
    """Run ``detect`` ``repeats`` times on every image; accuracy from the first pass, time over all."""
    times: list[float] = []
    per_image: list[dict[str, Any]] = []
    for rep in range(repeats):
        for img in images:
            t0 = time.perf_counter()
            tags = detect(img)
            times.append((time.perf_counter() - t0) * 1e3)
            if rep == 0:
                per_image.append(compare(img.reference, tags))
    return _summarise(per_image, times)


def photo_camera_info(width_px: int, height_px: int) -> CameraInfo:
    """A nominal pinhole model for an uncalibrated photo (focal = image width, centred, no distortion): only
    the pose depends on it, not the corners compared here."""
    return CameraInfo(width_px, height_px, float(width_px), float(width_px), (width_px - 1) / 2, (height_px - 1) / 2)


def regolith_detect_fn(profile: str = "real") -> Callable[[RealImage], list[Tag]]:
    """The project's full ``FiducialDetector.detect`` (BGR frame in, poses out) in a named profile:
    ``real`` = ``real_camera_fiducial_detector``; ``real_opencv_decode`` = the same with OpenCV's own decoding
    and no low-contrast flattening (the profile before the fast decoder); ``sim`` = the rover's sim profile
    (one 23 px window)."""
    from autonomy.perception.fiducials import FiducialDetector, real_camera_fiducial_detector

    detectors: dict[tuple[int, int], FiducialDetector] = {}
    mount = Pose3D(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    def detect(img: RealImage) -> list[Tag]:
        h, w = img.gray.shape
        det = detectors.get((w, h))
        if det is None:
            info = photo_camera_info(w, h)
            if profile == "real":
                det = real_camera_fiducial_detector(info, 1.0)
            elif profile == "real_opencv_decode":
                det = real_camera_fiducial_detector(info, 1.0, fast_decode=False, quad_search_min_contrast=0.0)
            elif profile == "sim":
                det = FiducialDetector(info, 1.0, threshold_windows_px=(23,), keep_ambiguous=True)
            else:
                raise ValueError(f"regolith_detect_fn: unknown profile {profile!r} (real, real_opencv_decode, sim)")
            detectors[(w, h)] = det
        bgr = np.asarray(cv2.cvtColor(img.gray, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
        frame = CameraFrame(0.0, "photo", bgr, det.info, mount)
        return [Tag(o.tag_id, np.array(o.corners_px, dtype=np.float64)) for o in det.detect(frame)]

    return detect


def opencv_default_detect_fn() -> Callable[[RealImage], list[Tag]]:
    dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
    detector = cv2.aruco.ArucoDetector(dictionary, cv2.aruco.DetectorParameters())

    def detect(img: RealImage) -> list[Tag]:
        corners, ids, _ = detector.detectMarkers(img.gray)
        if ids is None:
            return []
        quads = np.asarray(corners, dtype=np.float64).reshape(-1, 4, 2)
        return [Tag(int(i), q) for i, q in zip(np.asarray(ids).reshape(-1), quads, strict=True)]

    return detect


def _pupil_in_subprocess(images: Sequence[RealImage], repeats: int) -> dict[str, Any]:
    """pupil-apriltags corrupts the C heap now and then (pupil-labs/apriltags#39): run it in a child process
    on the same grey images; it prints its detections and times as one JSON line."""
    try:
        import pupil_apriltags  # noqa: F401
    except ImportError:
        return {"error": "pupil-apriltags not installed (pip install '.[bench]')"}
    with tempfile.TemporaryDirectory(prefix="regolith_realdata_") as tmp:
        paths = []
        for k, img in enumerate(images):
            p = Path(tmp) / f"{k}.npy"
            np.save(p, img.gray)
            paths.append(str(p))
        code = f"from targets.bench_realdata import pupil_worker; pupil_worker({paths!r}, {repeats})"
        root = str(Path(__file__).resolve().parents[1])
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=600, cwd=root
        )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("{")), None)
    if line is None:
        return {"error": f"pupil-apriltags worker failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"}
    raw: dict[str, Any] = json.loads(line)
    per_image = []
    for img, dets in zip(images, raw["detections"], strict=True):
        tags = [Tag(int(d[0]), np.array(d[1], dtype=np.float64) - APRILTAG_TO_OPENCV_PX) for d in dets]
        per_image.append(compare(img.reference, tags))
    result = _summarise(per_image, raw["times_ms"])
    if proc.returncode != 0:
        result["note"] = f"worker aborted after reporting (exit {proc.returncode}): pupil-labs/apriltags#39"
    return result


def pupil_worker(paths: list[str], repeats: int) -> None:
    """Child-process side of ``_pupil_in_subprocess``: pupil-apriltags with quad_decimate=1, one thread."""
    from pupil_apriltags import Detector

    cv2.setNumThreads(1)
    grey = [np.ascontiguousarray(np.load(p)) for p in paths]
    detector = Detector(families="tag36h11", nthreads=1, quad_decimate=1.0)
    times: list[float] = []
    detections: list[list[Any]] = []
    for rep in range(repeats):
        for img in grey:
            t0 = time.perf_counter()
            dets = detector.detect(img)
            times.append((time.perf_counter() - t0) * 1e3)
            if rep == 0:
                detections.append([[int(d.tag_id), np.asarray(d.corners).tolist()] for d in dets])
    sys.stdout.write(json.dumps({"times_ms": times, "detections": detections}) + "\n")
    sys.stdout.flush()


REGOLITH_REAL = "regolith FiducialDetector, real_camera_fiducial_detector (detection + pose)"
REGOLITH_REAL_OPENCV = "regolith FiducialDetector, real profile, OpenCV's decoding, no flattening (detection + pose)"
REGOLITH_SIM = "regolith FiducialDetector, rover sim profile: one 23 px window (detection + pose)"
OPENCV_DEFAULT = "OpenCV ArucoDetector, defaults (detection only)"
PUPIL = "pupil-apriltags (AprilTag 3), quad_decimate=1, 1 thread (detection only)"


@one_opencv_thread
def run_swarmathon_bench(data_dir: Path | None = None, repeats: int = 5) -> dict[str, Any]:
    """All detectors on the Swarmathon photos, side by side; JSON-able."""
    from autonomy.perception.fiducials import warm_up

    warm_up()  # numba kernels compiled / loaded before timing (else the first frame's p99 holds the load)
    try:
        images = load_images(data_dir)
    except FileNotFoundError as exc:
        return {"error": str(exc)}
    out: dict[str, Any] = {
        "images": [img.name for img in images],
        "resolution": f"{images[0].gray.shape[1]}x{images[0].gray.shape[0]}",
        "reference_tags": sum(len(img.reference) for img in images),
        "repeats": repeats,
        "detectors": {},
        "note": "provisional: wall time on a shared 2-core machine; compare ratios from the same run",
    }
    out["detectors"][REGOLITH_REAL] = evaluate(images, regolith_detect_fn("real"), repeats)
    out["detectors"][REGOLITH_REAL_OPENCV] = evaluate(images, regolith_detect_fn("real_opencv_decode"), repeats)
    out["detectors"][REGOLITH_SIM] = evaluate(images, regolith_detect_fn("sim"), repeats)
    out["detectors"][OPENCV_DEFAULT] = evaluate(images, opencv_default_detect_fn(), repeats)
    out["detectors"][PUPIL] = _pupil_in_subprocess(images, repeats)
    ours = out["detectors"][REGOLITH_REAL]["p50_ms"]
    for name in (REGOLITH_REAL_OPENCV, OPENCV_DEFAULT, PUPIL):
        peer = out["detectors"][name].get("p50_ms")
        if peer:
            out[f"speedup_vs {name}"] = round(peer / ours, 2)
    return out


if __name__ == "__main__":
    print(json.dumps(run_swarmathon_bench(), indent=1))
