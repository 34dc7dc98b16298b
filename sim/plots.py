"""Run-report figures shared by ``rover sim run`` (targets/sim_run.py) and the scripted dig demo
(sim/scripted.py): the before/after elevation maps of a run and the rendered scene as a PNG.

Only numpy, matplotlib (Agg) and OpenCV: importing this never starts a physics client."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sim.judge import ElevationScan
from sim.sites import Box


def plot_elevation(before: ElevationScan, after: ElevationScan, box: Box | None, path: Path) -> Path:
    """Before, after and difference (after - before) height maps of a run on one grid (matplotlib, Agg),
    the target box outlined when given. Returns ``path``."""
    if before.heights_m.shape != after.heights_m.shape:
        raise ValueError(f"plot_elevation: scans differ in shape {before.heights_m.shape} vs {after.heights_m.shape}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    ny, nx = before.heights_m.shape
    ext: Sequence[float] = (
        before.origin_xy[0],
        before.origin_xy[0] + (nx - 1) * before.cell_xy_m[0],
        before.origin_xy[1],
        before.origin_xy[1] + (ny - 1) * before.cell_xy_m[1],
    )
    aspect = (ext[3] - ext[2]) / max(ext[1] - ext[0], 1e-9)
    fig, axes = plt.subplots(3, 1, figsize=(8, min(15.0, 1.0 + 3 * 8 * aspect)))
    for ax, data, title in (
        (axes[0], before.heights_m, "before (m)"),
        (axes[1], after.heights_m, "after (m)"),
        (axes[2], after.heights_m - before.heights_m, "after - before (m)"),
    ):
        diff = "-" in title
        lim = max(float(np.abs(data).max()), 1e-6)
        im = ax.imshow(
            data,
            origin="lower",
            extent=tuple(ext),
            cmap="RdBu" if diff else "terrain",
            vmin=-lim if diff else None,
            vmax=lim if diff else None,
        )
        ax.set_title(title)
        ax.set_xlabel("x (m, map)")
        ax.set_ylabel("y (m)")
        fig.colorbar(im, ax=ax)
        if box is not None:
            ax.add_patch(Rectangle((box.x_min_m, box.y_min_m), *box.size_xy, fill=False, color="k"))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_scene_png(path: Path, scene_bgr: npt.NDArray[np.uint8]) -> Path:
    """A rendered scene (``World.render_scene``, BGR uint8) as a PNG. Returns ``path``."""
    import cv2

    if scene_bgr.ndim != 3 or scene_bgr.shape[2] != 3 or scene_bgr.dtype != np.uint8:
        raise ValueError(f"write_scene_png: need an H x W x 3 uint8 image, got {scene_bgr.shape} {scene_bgr.dtype}")
    if not cv2.imwrite(str(path), scene_bgr):
        raise OSError(f"{path}: could not write the scene image")
    return path
