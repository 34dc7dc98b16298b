"""Tag tracking between frames: search the predicted regions first, fall back to the full frame.

``TrackingFiducialDetector`` wraps ``FiducialDetector`` (same observations, same covariance model). Per frame:

1. If there are tracks and the last full-frame search is fewer than ``full_frame_every`` frames ago, every
   track's corners are predicted (constant velocity in the image from its last two sightings; a tag seen for
   the first time gets the median motion of the others: a turning rover shifts them all alike), the
   predicted quad's box is grown by max(``roi_margin_px``, ``roi_margin_tag`` x tag size) plus
   ``roi_margin_motion`` x its motion, overlapping boxes are merged, and each box is converted to grey and
   searched on its own (``cv2.aruco`` on the crop; crops whose tags are larger than ``roi_target_tag_px`` are
   first shrunk with INTER_AREA so the detector works on fewer pixels; corners are scaled back and then
   edge-refined on the full-resolution crop, which removes the shrink's imprecision). Tags entering the view
   are searched in strips along the left and right edges (``border_strip_px`` wide at the full resolution;
   the strip on the side the scene moves in from is widened by ``strip_motion_gain`` x that motion, since a
   turning rover moves the scene by 80-120 px per frame at 3 frames/s; in a turn the side the scene leaves
   by gets none). A tag found in two overlapping boxes is kept once.
2. If a track seen in the last frame and predicted inside the image was not found, or there were no tracks,
   or the periodic full-frame search is due, the whole frame is searched (as ``FiducialDetector.detect``). So
   a tag that is lost is searched for in the same frame; a tag leaving the view is searched but not required;
   a tag that appears away from the edges (out of an occlusion, or grown above the size limit) is found at
   the next full-frame search at the latest (``full_frame_every`` frames; with no tracks every frame is a
   full-frame search). When a full-frame search does not find a track predicted inside the view (a tag at the
   limit of detectability, e.g. 23-24 px in the 1280x720 upscaled frames), the next frame is searched whole
   too, once: such a tag is often found again a frame later, away from the strips.

On the bench's rendered mission frames (640x480, ``rover bench --suite perception``; 6 sim runs, seeds 1-3)
the tracker with fast decoding finds on the same frame every tag of 24 px or more that OpenCV's full-frame
``ArucoDetector`` or the full-frame detector finds; smaller tags that appear mid-view (grown past the
detection limit) are found up to 4 frames late (0-2.3 % of the sightings). Before the motion-widened strips it
missed 5 sightings (17-23 px) of 3 tags that had come further into the view than the fixed 96 px strip within
one frame of a turn; before the leaving-tag rule 14 % of frames fell back to a full-frame search (now 7 %).

``roi_quad_stage="own"`` searches the regions without ``cv2.aruco``: ``find_tag_quads`` (adaptive threshold,
contours, convex hull, 4-gons), a wide edge refinement, ``decode_tag36h11``, the usual refinement of the
decoded quads; the border strips at half resolution. Measured on 178 rendered mission frames it finds a few
more tags (at the image edge) but is slower per tracked frame than ``cv2.aruco`` on the same small crops
(about 1.0 vs 0.6 ms: Python's per-contour work costs more than OpenCV's fixed per-call costs on crops of
~80 x 80 px), so the default stays ``"aruco"``.

Only regions are converted to grey and refined: no full-frame buffer per frame on the tracked path (measured:
converting the whole frame once instead costs the same). Where a tracked frame's time goes (bench mission frames,
p50 about 0.65 ms): OpenCV's quad search in the two entry strips about 0.23 ms with their grey conversion, in the
tracks' regions about 0.2 ms, pose and covariance about 0.1 ms, edge refinement about 0.07 ms; without the strips
a frame takes 0.43 ms but 19 tag sightings ArucoDetector finds are then missed. Tried and not kept: decoding a
lost tag's rejected quads with the full-frame search's decoder before falling back (fewer fall-backs, no
measurable speed-up, and 3 sightings on 7 px motion-blurred frames that only the fall-back's full-frame search
happened to find were then missed); OpenCV's ``minMarkerDistanceRate`` 0.02 in the regions (11 -> 9 fall-backs,
no measurable speed-up).
A track whose tag is not found coasts for up to ``max_misses`` searches (searched, not required), then is
dropped; all are dropped after a gap of more than ``max_gap_s`` between frames (``reset`` does this
explicitly).
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
    _unchanged,
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
class _Prediction:
    """One track's predicted quad for this frame (px)."""

    tag_id: int
    x0: float  # bounding box of the predicted corners
    y0: float
    x1: float
    y1: float
    size: float  # predicted tag size (square root of the area)
    speed: float  # largest corner motion component since the last sighting, px
    vx: float  # mean horizontal velocity, px per frame (> 0: moving right)
    seen: bool  # found in the last frame


# every track moving the same way by more than this (px per frame): a turn, no tag enters from the other side
_TURN_PX = 8.0


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
        roi_margin_motion: float = 0.5,
        roi_target_tag_px: float = 40.0,
        max_gap_s: float = 1.0,
        max_misses: int = 2,
        border_strip_px: int = 96,
        strip_motion_gain: float = 1.25,
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
        if not (roi_margin_px >= 0.0 and roi_margin_tag >= 0.0 and roi_margin_motion >= 0.0):
            raise ValueError("TrackingFiducialDetector: ROI margins must be >= 0")
        if not roi_target_tag_px >= 16.0:
            raise ValueError(f"TrackingFiducialDetector: roi_target_tag_px must be >= 16, got {roi_target_tag_px}")
        if not strip_motion_gain >= 0.0:
            raise ValueError(f"TrackingFiducialDetector: strip_motion_gain must be >= 0, got {strip_motion_gain}")
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
        self._margin_motion = float(roi_margin_motion)
        self._target_px = float(roi_target_tag_px)
        self._max_gap_s = float(max_gap_s)
        self._max_misses = int(max_misses)
        self._border_px = int(border_strip_px)
        self._strip_motion_gain = float(strip_motion_gain)
        self._tracks: dict[int, _Track] = {}
        # grey of the searched regions only (float32 for edge refinement); allocated once, reused per frame
        self._gray_f32 = np.zeros((info.height_px, info.width_px), dtype=np.float32)
        self._gray_u8 = np.zeros((info.height_px, info.width_px), dtype=np.uint8)
        self._own_quads = roi_quad_stage == "own"
        self._window_px = int(max(threshold_windows_px))
        self._max_bit_errors = int(5 * float(detector_kwargs.get("error_correction_rate", 0.6)))
        self._since_full = 0
        self._recheck = False
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
        self._recheck = False

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
        # tracks predicted well inside the view before this full-frame search: one it does not find either
        # (a tag at the edge of detectability, which the next frames may show again away from the edges and
        # strips) makes the next frame a full-frame search too, once
        inside = self._required(self._predict(), coasting=True) if self._tracks and not self._recheck else set()
        obs = self._full.detect(frame)
        self._full_searches += 1
        self._since_full = 0
        self._recheck = bool(inside - {o.tag_id for o in obs})
        if self._recheck:
            self._since_full = self._every - 1
        self._update_tracks(obs, frame.stamp_s)
        return obs

    def _update_tracks(self, obs: list[FiducialObservation], stamp_s: float) -> None:
        new: dict[int, _Track] = {}
        fresh: list[tuple[int, FloatArray]] = []
        for o in obs:
            quad = np.asarray(o.corners_px, dtype=np.float64)
            old = self._tracks.get(o.tag_id)
            if old is not None and old.misses == 0:
                new[o.tag_id] = _Track(quad, quad - old.quad, stamp_s)
            else:
                fresh.append((o.tag_id, quad))
        if fresh:
            # a tag seen for the first time (or again after a miss) is given the image motion of the tags seen in
            # both frames (median shift: a turning rover moves them all alike), else none; its search box grows
            # by that motion on every side, so it also covers the tag where it was
            shifts = [t.velocity.mean(axis=0) for t in new.values()]
            shift = np.median(np.stack(shifts), axis=0) if shifts else np.zeros(2, dtype=np.float64)
            velocity = np.broadcast_to(shift, (4, 2)).copy()
            for tag_id, quad in fresh:
                new[tag_id] = _Track(quad, velocity, stamp_s)
        for tag_id, track in self._tracks.items():
            if tag_id not in new and track.misses + 1 <= self._max_misses:
                new[tag_id] = _Track(track.quad, track.velocity, track.stamp_s, track.misses + 1)
        self._tracks = new

    def _predict(self) -> list[_Prediction]:
        """Every track's predicted quad (constant image velocity). Plain floats: a handful of 4-corner quads,
        where numpy's per-call cost would be most of the work."""
        out: list[_Prediction] = []
        for tag_id, track in self._tracks.items():
            steps = track.misses + 1  # frames since the last sighting (a coasting track moved on meanwhile)
            vel = (steps * track.velocity).tolist()
            pred = [(x + vx, y + vy) for (x, y), (vx, vy) in zip(track.quad.tolist(), vel, strict=True)]
            xs, ys = [c[0] for c in pred], [c[1] for c in pred]
            area = 0.5 * abs(sum(xs[k] * ys[k - 3] - xs[k - 3] * ys[k] for k in range(4)))
            out.append(
                _Prediction(
                    tag_id,
                    min(xs),
                    min(ys),
                    max(xs),
                    max(ys),
                    math.sqrt(area),
                    max(max(abs(vx), abs(vy)) for vx, vy in vel),
                    0.25 * sum(vx for vx, _ in vel) / steps,
                    track.misses == 0,
                )
            )
        return out

    def _required(self, prediction: list[_Prediction], coasting: bool = False) -> set[int]:
        """Tracks a region search must find (else the frame falls back to the full frame): seen in the last
        frame, and predicted inside the image with room for the tag's white ring, OpenCV's 3 px border distance
        and a quarter of the image motion (a tag leaving the view is searched, not required)."""
        w, h = self._info.width_px, self._info.height_px
        out: set[int] = set()
        for p in prediction:
            room = 3.0 + 0.125 * p.size + 0.25 * p.speed
            if (p.seen or coasting) and p.x0 >= room and p.y0 >= room and p.x1 <= w - 1 - room and p.y1 <= h - 1 - room:
                out.add(p.tag_id)
        return out

    def _regions_of_tracks(self, prediction: list[_Prediction]) -> list[tuple[int, int, int, int, float, bool]]:
        """Merged search boxes (x0, y0, x1, y1, smallest tag px inside, is a border strip), clipped to the
        image."""
        w, h = self._info.width_px, self._info.height_px
        boxes: list[list[float]] = []
        for p in prediction:
            margin = max(self._margin_px, self._margin_tag * p.size) + self._margin_motion * p.speed
            boxes.append(
                [
                    max(0.0, p.x0 - margin),
                    max(0.0, p.y0 - margin),
                    min(float(w), p.x1 + margin),
                    min(float(h), p.y1 + margin),
                    p.size,
                ]
            )
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
            # tags entering the view: strips along the left and right edges at the full resolution. The strip on
            # the side the scene moves in from is widened by that image motion (a tag cut by the edge, or just
            # outside it, in the last frame is now up to that far in: a turning rover moves the scene by 80-120
            # px per frame); in a turn (every track moving the same way by more than 8 px per frame) the side
            # the scene leaves by gets none.
            fastest_right = max(p.vx for p in prediction)
            fastest_left = -min(p.vx for p in prediction)
            base = min(self._border_px, w // 4)
            left = min(w // 2, base + math.ceil(self._strip_motion_gain * max(0.0, fastest_right)))
            right = min(w // 2, base + math.ceil(self._strip_motion_gain * max(0.0, fastest_left)))
            # a track's region inside a strip is searched as part of the strip (one call fewer)
            if fastest_right >= -_TURN_PX:
                out = [r for r in out if r[2] > left]
                out.append((0, 0, left, h, self._min_px, True))
            if fastest_left >= -_TURN_PX:
                out = [r for r in out if r[0] < w - right or r[5]]
                out.append((w - right, 0, w, h, self._min_px, True))
        return out

    def _detect_in_regions(self, frame: CameraFrame) -> list[FiducialObservation] | None:
        """Observations found in the tracked regions, or None when a tracked tag was not found (fall back)."""
        all_quads: list[FloatArray] = []
        all_ids: list[int] = []
        prediction = self._predict()
        for x0, y0, x1, y1, tag_px, is_strip in self._regions_of_tracks(prediction):
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
            # the edge refinement below starts from the same kind of corners as the full-frame search's: with
            # fast decoding OpenCV's contour corners (no cornerSubPix: measured on the bench's mission frames,
            # tracked corners then agree with the full-frame ones to 0.06 px at p95 instead of 1.1 px), except
            # on a shrunk crop, whose contour corners scale back to 2-3 px errors
            self._params.cornerRefinementMethod = (
                cv2.aruco.CORNER_REFINE_SUBPIX
                if scale < 0.95 or not self._full.fast_decode
                else cv2.aruco.CORNER_REFINE_NONE
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
        if not self._required(prediction) <= found:
            return None
        if not all_ids:
            return []
        quads_all = np.concatenate(all_quads, axis=0)
        if not self._own_quads:  # the own stage's quads are refined before decoding
            if len(set(all_ids)) < len(all_ids):
                quads_all, all_ids = _one_per_tag(quads_all, all_ids)
            quads_all = refine_corners_by_edges(self._gray_f32, quads_all, self._camera_matrix, self._distortion)
        return self._full._observations(frame, None, quads_all, all_ids, refine=_unchanged)

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


def _one_per_tag(quads: FloatArray, ids: list[int]) -> tuple[FloatArray, list[int]]:
    """Drop repeats: a tag inside two overlapping search boxes (a track's region and a border strip) is found in
    both. A quad is a repeat when an earlier quad of the same id has its centre within a quarter of its size."""
    centres = quads.mean(axis=1)
    half = 0.25 * quad_pixel_size_px(quads)
    keep: list[int] = []
    for k, tag_id in enumerate(ids):
        if not any(ids[j] == tag_id and np.hypot(*(centres[k] - centres[j])) <= half[j] for j in keep):
            keep.append(k)
    if len(keep) == len(ids):
        return quads, ids
    return quads[keep], [ids[k] for k in keep]
