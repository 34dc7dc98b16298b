"""The board path runs without PyBullet: importing it with pybullet made unimportable must work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BOARD_MODULES = [
    "autonomy.msgs",
    "autonomy.runtime.pipeline",
    "autonomy.runtime.loop",
    "autonomy.mission.mission_file",
    "hw.interfaces",
    "hw.rover_io",
    "hw.fakes",
    "targets.cli",
]


def test_board_path_imports_without_pybullet(repo_root: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['pybullet'] = None\n"  # any import of pybullet now raises ImportError
        "sys.modules['pybullet_utils'] = None\n"
        + "".join(f"import {m}\n" for m in BOARD_MODULES)
        + "assert 'pybullet' not in [k for k, v in sys.modules.items() if v is not None]\n"
        "from targets.cli import main\n"
        "sys.exit(main(['mission', 'check', 'missions/waypoints.yaml']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "ok: mission 'waypoints'" in proc.stdout
