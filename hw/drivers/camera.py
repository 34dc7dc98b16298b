"""OpenCV camera driver: V4L2 devices (USB cameras, ``/dev/videoN``), GStreamer pipelines (the Pi's
libcamera, the Jetson's CSI camera through nvarguscamerasrc), and recorded footage (a video file or an image
sequence such as ``frames/%04d.png``, through OpenCV's FFmpeg or image-sequence reader) for replaying a drive
on the bench. A missing device or file raises ``DeviceError``; there is never a synthetic fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2

from autonomy.msgs import CameraFrame, CameraInfo, Pose3D
from hw.interfaces import Clock, DeviceError


def libcamera_pipeline(width: int, height: int, fps: int) -> str:
    """GStreamer pipeline for the Raspberry Pi camera via libcamera, ending in BGR frames for appsink."""
    return (
        f"libcamerasrc ! video/x-raw,width={width},height={height},framerate={fps}/1 ! videoconvert ! "
        "video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false"
    )


def jetson_csi_pipeline(width: int, height: int, fps: int, sensor_id: int = 0) -> str:
    """GStreamer pipeline for a Jetson CSI camera (nvarguscamerasrc, NVMM -> BGR)."""
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! video/x-raw(memory:NVMM),width={width},height={height},"
        f"framerate={fps}/1 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
        "appsink drop=true max-buffers=1 sync=false"
    )


class OpenCvCamera:
    """``Camera`` port over ``cv2.VideoCapture``. ``backend`` is "v4l2" (``source`` is a device path),
    "gstreamer" (``source`` is a pipeline ending in appsink) or "file" (``source`` is a video file, or an
    image sequence pattern with a ``%d``-style field; ``loop`` rewinds it at the end, otherwise the end of the
    recording raises ``DeviceError``). A recording is read one frame per ``read``, as fast as it is asked."""

    def __init__(
        self,
        camera_id: str,
        source: str,
        backend: str,
        info: CameraInfo,
        mount: Pose3D,
        clock: Clock,
        fps: int = 30,
        capture: Any = None,
        loop: bool = False,
    ) -> None:
        self.camera_id = camera_id
        self.info = info
        self.mount = mount
        self.clock = clock
        self.source = source
        self.backend = backend
        self.loop = loop
        self.frames_read = 0
        if capture is not None:
            self.cap = capture
        elif backend == "file":
            self.cap = open_recording(camera_id, source)
        elif backend == "v4l2":
            self.cap = cv2.VideoCapture(source, cv2.CAP_V4L2)
        elif backend == "gstreamer":
            if "GStreamer:                   YES" not in cv2.getBuildInformation():
                raise DeviceError(
                    f"camera {camera_id}: this OpenCV build has no GStreamer support; install the distribution's "
                    "python3-opencv (built with GStreamer) or use a v4l2 camera"
                )
            self.cap = cv2.VideoCapture(source, cv2.CAP_GSTREAMER)
        else:
            raise ValueError(f"camera {camera_id}: unknown backend {backend!r} (v4l2, gstreamer, file)")
        if not self.cap.isOpened():
            raise DeviceError(f"camera {camera_id}: cannot open {backend} source {source!r} (device missing?)")
        if backend == "v4l2":
            self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, info.width_px)
            self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, info.height_px)
            self.cap.set(cv2.CAP_PROP_FPS, fps)

    def read(self) -> CameraFrame | None:
        ok, image = self.cap.read()
        if (not ok or image is None) and self.loop and self.frames_read > 0:
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # end of the recording: rewind
            ok, image = self.cap.read()
        if not ok or image is None:
            if self.backend == "file" and self.frames_read > 0:
                hint = "rewinding failed" if self.loop else "set camera.loop = true to replay it"
                raise DeviceError(
                    f"camera {self.camera_id}: end of the recording {self.source!r} after {self.frames_read} "
                    f"frames ({hint})"
                )
            raise DeviceError(f"camera {self.camera_id}: read from {self.source!r} failed (disconnected?)")
        self.frames_read += 1
        h, w = image.shape[:2]
        if (w, h) != (self.info.width_px, self.info.height_px):
            raise DeviceError(
                f"camera {self.camera_id}: got {w}x{h}, calibration is for {self.info.width_px}x{self.info.height_px}"
            )
        return CameraFrame(self.clock.now_s(), self.camera_id, image, self.info, self.mount)

    def close(self) -> None:
        self.cap.release()


def open_recording(camera_id: str, source: str) -> Any:
    """``cv2.VideoCapture`` on a video file (FFmpeg) or an image sequence (``%d``-style pattern). Raises
    ``DeviceError`` naming the file when it is missing or OpenCV cannot decode it."""
    if "%" in source:
        first = Path(source % 0)
        second = Path(source % 1)
        if not (first.is_file() or second.is_file()):
            raise DeviceError(f"camera {camera_id}: image sequence {source!r}: no {first} or {second}")
        cap = cv2.VideoCapture(source, cv2.CAP_IMAGES)
    else:
        if not Path(source).is_file():
            raise DeviceError(f"camera {camera_id}: recording {source!r} not found")
        cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise DeviceError(f"camera {camera_id}: OpenCV cannot decode {source!r} (FFmpeg build, codec?)")
    return cap
