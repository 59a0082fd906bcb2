import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "netd.service"


def test_unit_is_type_notify_with_state_and_runtime_dirs():
    text = UNIT.read_text()
    for line in ("Type=notify", "Restart=on-failure", "RuntimeDirectory=netd", "StateDirectory=netd"):
        assert line in text.splitlines()


def test_unit_bounds_tasks_and_memory():
    lines = UNIT.read_text().splitlines()
    assert "TasksMax=256" in lines and "MemoryMax=512M" in lines


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_passes(tmp_path):
    # verify checks that ExecStart exists: point it at this checkout's netd.
    netd = Path(sys.executable).with_name("netd")
    assert netd.exists(), "netd console script missing: run `make dev`"
    unit = tmp_path / "netd.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/netd", str(netd)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)],
                            capture_output=True, text=True)
    problems = [line for line in result.stderr.splitlines() if "netd.service" in line]
    assert result.returncode == 0 and problems == [], result.stderr
