"""OpenCV camera driver: V4L2 devices (USB cameras, ``/dev/videoN``) and GStreamer pipelines (the Pi's
libcamera, the Jetson's CSI camera through nvarguscamerasrc). A missing device raises ``DeviceError``; there
is never a synthetic fallback."""

from __future__ import annotations

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
    """``Camera`` port over ``cv2.VideoCapture``. ``backend`` is "v4l2" (``source`` is a device path) or
    "gstreamer" (``source`` is a pipeline ending in appsink)."""

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
    ) -> None:
        self.camera_id = camera_id
        self.info = info
        self.mount = mount
        self.clock = clock
        self.source = source
        if capture is not None:
            self.cap = capture
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
            raise ValueError(f"camera {camera_id}: unknown backend {backend!r} (v4l2, gstreamer)")
        if not self.cap.isOpened():
            raise DeviceError(f"camera {camera_id}: cannot open {backend} source {source!r} (device missing?)")
        if backend == "v4l2":
            self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, info.width_px)
            self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, info.height_px)
            self.cap.set(cv2.CAP_PROP_FPS, fps)

    def read(self) -> CameraFrame | None:
        ok, image = self.cap.read()
        if not ok or image is None:
            raise DeviceError(f"camera {self.camera_id}: read from {self.source!r} failed (disconnected?)")
        h, w = image.shape[:2]
        if (w, h) != (self.info.width_px, self.info.height_px):
            raise DeviceError(
                f"camera {self.camera_id}: got {w}x{h}, calibration is for {self.info.width_px}x{self.info.height_px}"
            )
        return CameraFrame(self.clock.now_s(), self.camera_id, image, self.info, self.mount)

    def close(self) -> None:
        self.cap.release()
