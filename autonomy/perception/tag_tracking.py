"""Tag tracking between frames: search the predicted regions first, fall back to the full frame.

``TrackingFiducialDetector`` wraps ``FiducialDetector`` (same observations, same covariance model). Per frame:

1. If there are tracks and the last full-frame search is fewer than ``full_frame_every`` frames ago, every
   track's corners are predicted (constant velocity in the image from its last two sightings), the
   predicted quad's box is grown by ``margin`` (max(``roi_margin_px``, ``roi_margin_tag`` x tag size)),
   overlapping boxes are merged, and each box is converted to grey and searched on its own (``cv2.aruco``
   on the crop; crops whose tags are larger than ``roi_target_tag_px`` are first shrunk with INTER_AREA so
   the detector works on fewer pixels; corners are scaled back and then edge-refined on the full-resolution
   crop, which removes the shrink's imprecision).
2. If any track was not found in its region, or there were no tracks, or the periodic full-frame search is
   due, the whole frame is searched (as ``FiducialDetector.detect``). So a tag that is lost is searched
   for in the same frame; a tag that newly enters the view is found at the next full-frame search at the
   latest (``full_frame_every`` frames; with no tracks every frame is a full-frame search).

``roi_quad_stage="own"`` searches the regions without ``cv2.aruco``: ``find_tag_quads`` (adaptive threshold,
contours, convex hull, 4-gons), a wide edge refinement, ``decode_tag36h11``, the usual refinement of the
decoded quads; the border strips at half resolution. Measured on 178 rendered mission frames it finds a few
more tags (at the image edge) but is slower per tracked frame than ``cv2.aruco`` on the same small crops
(about 1.0 vs 0.6 ms: Python's per-contour work costs more than OpenCV's fixed per-call costs on crops of
~80 x 80 px), so the default stays ``"aruco"``.

Only regions are converted to grey and refined: no full-frame buffer per frame on the tracked path.
Tracks are dropped when their tag is not found by a full-frame search, or when frames arrive from another
camera (``reset`` does this explicitly).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from autonomy.msgs import CameraFrame, CameraInfo, FiducialObservation
from autonomy.perception.fiducials import (
    FiducialDetector,
    _distinct_quads,
    aruco_parameters,
    decode_tag36h11,
    find_tag_quads,
    quad_pixel_size_px,
    refine_corners_by_edges,
)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _Track:
    quad: FloatArray  # (4, 2) raw pixels at the last sighting
    velocity: FloatArray  # (4, 2) px per frame (last two sightings), zeros after the first
    stamp_s: float
    misses: int = 0  # consecutive searches that did not find it (a coasting track is searched, not required)


@dataclass(frozen=True, slots=True)
class TrackingStats:
    """Counters since construction: frames seen, full-frame searches, region-only frames, regions searched."""

    frames: int
    full_frame_searches: int
    tracked_frames: int
    regions_searched: int


class TrackingFiducialDetector:
    """``FiducialDetector`` with region-of-interest tracking (see the module docstring).

    ``threshold_windows_px`` (default one 23 px adaptive-threshold pass, see ``aruco_parameters``),
    ``keep_ambiguous`` and any other keyword arguments are passed to the wrapped ``FiducialDetector``.
    """

    def __init__(
        self,
        info: CameraInfo,
        tag_sizes_m: Mapping[int, float] | float,
        min_pixel_size_px: float = 12.0,
        *,
        full_frame_every: int = 5,
        roi_margin_px: float = 24.0,
        roi_margin_tag: float = 0.75,
        roi_target_tag_px: float = 40.0,
        max_gap_s: float = 1.0,
        max_misses: int = 2,
        border_strip_px: int = 96,
        threshold_windows_px: tuple[int, ...] = (23,),
        keep_ambiguous: bool = False,
        roi_quad_stage: str = "aruco",
        **detector_kwargs: Any,
    ) -> None:
        if roi_quad_stage not in ("own", "aruco"):
            raise ValueError(
                f"TrackingFiducialDetector: roi_quad_stage must be 'own' or 'aruco', got {roi_quad_stage!r}"
            )
        if full_frame_every < 1:
            raise ValueError(f"TrackingFiducialDetector: full_frame_every must be >= 1, got {full_frame_every}")
        if not (roi_margin_px >= 0.0 and roi_margin_tag >= 0.0):
            raise ValueError("TrackingFiducialDetector: ROI margins must be >= 0")
        if not roi_target_tag_px >= 16.0:
            raise ValueError(f"TrackingFiducialDetector: roi_target_tag_px must be >= 16, got {roi_target_tag_px}")
        if not max_gap_s > 0.0:
            raise ValueError(f"TrackingFiducialDetector: max_gap_s must be > 0, got {max_gap_s}")
        self._full = FiducialDetector(
            info,
            tag_sizes_m,
            min_pixel_size_px,
            threshold_windows_px=threshold_windows_px,
            keep_ambiguous=keep_ambiguous,
            **detector_kwargs,
        )
        self._info = info
        self._min_px = float(min_pixel_size_px)
        self._every = int(full_frame_every)
        self._margin_px = float(roi_margin_px)
        self._margin_tag = float(roi_margin_tag)
        self._target_px = float(roi_target_tag_px)
        self._max_gap_s = float(max_gap_s)
        self._max_misses = int(max_misses)
        self._border_px = int(border_strip_px)
        self._tracks: dict[int, _Track] = {}
        # grey of the searched regions only (float32 for edge refinement); allocated once, reused per frame
        self._gray_f32 = np.zeros((info.height_px, info.width_px), dtype=np.float32)
        self._gray_u8 = np.zeros((info.height_px, info.width_px), dtype=np.uint8)
        self._own_quads = roi_quad_stage == "own"
        self._window_px = int(max(threshold_windows_px))
        self._max_bit_errors = int(5 * float(detector_kwargs.get("error_correction_rate", 0.6)))
        self._since_full = 0
        self._frames = 0
        self._full_searches = 0
        self._tracked_frames = 0
        self._regions = 0
        self._params = aruco_parameters(threshold_windows_px)
        self._params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        self._params.relativeCornerRefinmentWinSize = 0.5
        self._roi_detector = cv2.aruco.ArucoDetector(
            cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11), self._params
        )
        self._camera_matrix = info.matrix()
        dist = np.asarray(info.distortion, dtype=np.float64).reshape(-1)
        self._distortion: FloatArray | None = dist if np.any(dist != 0.0) else None

    @property
    def info(self) -> CameraInfo:
        return self._info

    @property
    def detector(self) -> FiducialDetector:
        """The wrapped full-frame detector."""
        return self._full

    @property
    def stats(self) -> TrackingStats:
        return TrackingStats(self._frames, self._full_searches, self._tracked_frames, self._regions)

    @property
    def tracked_ids(self) -> tuple[int, ...]:
        return tuple(sorted(self._tracks))

    def reset(self) -> None:
        """Forget all tracks: the next frame is a full-frame search."""
        self._tracks.clear()
        self._since_full = 0

    def detect(self, frame: CameraFrame) -> list[FiducialObservation]:
        """Observations in ``frame`` (as ``FiducialDetector.detect``), searching tracked regions first."""
        if frame.info != self._info:
            raise ValueError(
                f"TrackingFiducialDetector.detect: frame from camera {frame.camera_id!r} has CameraInfo "
                f"{frame.info}, but this detector was built for {self._info}"
            )
        self._frames += 1
        if self._tracks:
            newest = max(t.stamp_s for t in self._tracks.values())
            if not (0.0 <= frame.stamp_s - newest <= self._max_gap_s):
                self._tracks.clear()
        if self._tracks and self._since_full < self._every - 1:
            obs = self._detect_in_regions(frame)
            if obs is not None:
                self._since_full += 1
                self._tracked_frames += 1
                self._update_tracks(obs, frame.stamp_s)
                return obs
        obs = self._full.detect(frame)
        self._full_searches += 1
        self._since_full = 0
        self._update_tracks(obs, frame.stamp_s)
        return obs

    def _update_tracks(self, obs: list[FiducialObservation], stamp_s: float) -> None:
        new: dict[int, _Track] = {}
        for o in obs:
            quad = np.asarray(o.corners_px, dtype=np.float64)
            old = self._tracks.get(o.tag_id)
            velocity = quad - old.quad if old is not None and old.misses == 0 else np.zeros((4, 2), dtype=np.float64)
            new[o.tag_id] = _Track(quad, velocity, stamp_s)
        for tag_id, track in self._tracks.items():
            if tag_id not in new and track.misses + 1 <= self._max_misses:
                new[tag_id] = _Track(track.quad, track.velocity, track.stamp_s, track.misses + 1)
        self._tracks = new

    def _regions_of_tracks(self) -> list[tuple[int, int, int, int, float, bool]]:
        """Merged search boxes (x0, y0, x1, y1, smallest tag px inside, is a border strip), clipped to the
        image."""
        w, h = self._info.width_px, self._info.height_px
        boxes: list[list[float]] = []
        for track in self._tracks.values():
            pred = track.quad + track.velocity
            size = float(quad_pixel_size_px(pred[None])[0])
            margin = max(self._margin_px, self._margin_tag * size) + float(np.abs(track.velocity).max())
            x0, y0 = pred.min(axis=0) - margin
            x1, y1 = pred.max(axis=0) + margin
            boxes.append([max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1), size])
        boxes.sort(key=lambda b: b[0])
        merged: list[list[float]] = []
        for b in boxes:  # a handful of tags: merge overlapping boxes
            for m in merged:
                if b[0] <= m[2] and m[0] <= b[2] and b[1] <= m[3] and m[1] <= b[3]:
                    m[0], m[1] = min(m[0], b[0]), min(m[1], b[1])
                    m[2], m[3] = max(m[2], b[2]), max(m[3], b[3])
                    m[4] = min(m[4], b[4])
                    break
            else:
                merged.append(list(b))
        if len(merged) > 1:
            union = [
                min(m[0] for m in merged),
                min(m[1] for m in merged),
                max(m[2] for m in merged),
                max(m[3] for m in merged),
                min(m[4] for m in merged),
            ]
            if (union[2] - union[0]) * (union[3] - union[1]) <= 2.0 * sum(
                (m[2] - m[0]) * (m[3] - m[1]) for m in merged
            ):
                merged = [union]
        out = [
            (math.floor(m[0]), math.floor(m[1]), math.ceil(m[2]), math.ceil(m[3]), m[4], False)
            for m in merged
            if m[2] - m[0] >= 8.0 and m[3] - m[1] >= 8.0
        ]
        if self._border_px > 0:
            # tags entering the view: strips along the left and right edges at the full resolution
            strip = min(self._border_px, w // 4)
            if not any(r[0] <= 0 for r in out):
                out.append((0, 0, strip, h, self._min_px, True))
            if not any(r[2] >= w for r in out):
                out.append((w - strip, 0, w, h, self._min_px, True))
        return out

    def _detect_in_regions(self, frame: CameraFrame) -> list[FiducialObservation] | None:
        """Observations found in the tracked regions, or None when a tracked tag was not found (fall back)."""
        all_quads: list[FloatArray] = []
        all_ids: list[int] = []
        for x0, y0, x1, y1, tag_px, is_strip in self._regions_of_tracks():
            self._regions += 1
            crop = frame.image_bgr[y0:y1, x0:x1]
            gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
            scale = min(1.0, self._target_px / max(tag_px, 1.0))
            if is_strip and self._own_quads:
                # a tag entering the view only has to be found (the full frame search finds the smallest at the
                # latest ``full_frame_every`` frames on): half resolution, a quarter of the pixels
                scale = 0.5
            small = gray
            if scale < 0.95:
                size = (max(8, round(gray.shape[1] * scale)), max(8, round(gray.shape[0] * scale)))
                small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
                sx, sy = gray.shape[1] / size[0], gray.shape[0] / size[1]
            else:
                sx = sy = 1.0
            if self._own_quads:
                window = max(3, (self._window_px // 2) | 1) if is_strip else self._window_px
                quads = find_tag_quads(np.asarray(small, dtype=np.uint8), window, max(4.0, self._min_px * scale - 1.0))
                if quads.shape[0] == 0:
                    continue
                quads[..., 0] = (quads[..., 0] + 0.5) * sx - 0.5 + x0
                quads[..., 1] = (quads[..., 1] + 0.5) * sy - 0.5 + y0
                np.copyto(self._gray_f32[y0:y1, x0:x1], gray, casting="unsafe")
                self._gray_u8[y0:y1, x0:x1] = gray
                all_quads.append(quads)
                continue
            self._params.minMarkerPerimeterRate = min(
                0.9, 0.9 * 4.0 * self._min_px * scale / max(small.shape[0], small.shape[1])
            )
            self._roi_detector.setDetectorParameters(self._params)
            corners, ids, _ = self._roi_detector.detectMarkers(small)
            if ids is None or len(corners) == 0:
                continue
            quads = np.asarray(corners, dtype=np.float64).reshape(-1, 4, 2)
            # pixel centres: small pixel i covers full-resolution [i sx, (i + 1) sx)
            quads[..., 0] = (quads[..., 0] + 0.5) * sx - 0.5
            quads[..., 1] = (quads[..., 1] + 0.5) * sy - 0.5
            # grey of this region into the reused full-size buffer (refined below, all regions in one call)
            np.copyto(self._gray_f32[y0:y1, x0:x1], gray, casting="unsafe")
            quads[..., 0] += x0
            quads[..., 1] += y0
            all_quads.append(quads)
            all_ids.extend(int(i) for i in np.asarray(ids).reshape(-1))
        if self._own_quads:
            all_quads, all_ids = self._decode_own(all_quads)
        found = set(all_ids)
        required = {tag_id for tag_id, t in self._tracks.items() if t.misses == 0}
        if not required <= found:
            return None
        if not all_ids:
            return []
        quads_all = np.concatenate(all_quads, axis=0)
        if not self._own_quads:  # the own stage's quads are refined before decoding
            quads_all = refine_corners_by_edges(self._gray_f32, quads_all, self._camera_matrix, self._distortion)
        return self._full._observations(frame, None, quads_all, all_ids, refine=lambda q: q)

    def _decode_own(self, quads_list: list[FloatArray]) -> tuple[list[FloatArray], list[int]]:
        """Own quad stage's candidates (full-image pixels) -> edge-refined, decoded quads and their ids: size
        filter, repeats dropped, a wide edge refinement (contour corners, or corners scaled back from a shrunk
        crop, are off by up to 2-3 px), ``decode_tag36h11`` (its border and contrast tests reject the
        non-tags), then the usual refinement of the decoded quads only."""
        if not quads_list:
            return [], []
        cand = np.concatenate(quads_list, axis=0)
        cand = _distinct_quads(cand[quad_pixel_size_px(cand) >= self._min_px - 1.0])
        if cand.shape[0] == 0:
            return [], []
        cand = refine_corners_by_edges(
            self._gray_f32, cand, self._camera_matrix, self._distortion, search_modules=0.75, max_move_px=3.0
        )
        quads, ids = decode_tag36h11(self._gray_u8, cand, self._max_bit_errors)
        if ids:
            quads = refine_corners_by_edges(self._gray_f32, quads, self._camera_matrix, self._distortion)
        return ([quads] if ids else []), ids
