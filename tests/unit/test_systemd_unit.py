import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "netd.service"
SOCKET = UNIT.with_name("netd.socket")


def test_unit_is_type_notify_with_state_and_runtime_dirs():
    text = UNIT.read_text()
    for line in ("Type=notify", "Restart=on-failure", "RuntimeDirectory=netd", "StateDirectory=netd"):
        assert line in text.splitlines()


def test_socket_unit_listens_where_netd_does_and_outlives_it():
    from netd.config import DEFAULT_SOCKET

    service, socket_unit = UNIT.read_text().splitlines(), SOCKET.read_text().splitlines()
    assert f"ListenStream={DEFAULT_SOCKET}" in socket_unit and "SocketMode=0660" in socket_unit
    assert "Requires=netd.socket" in service and "Also=netd.socket" in service
    # else stopping netd would delete /run/netd, and the socket systemd holds in it
    assert "RuntimeDirectoryPreserve=yes" in service


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_passes(tmp_path):
    # verify checks that ExecStart exists: point it at this checkout's netd.
    netd = Path(sys.executable).with_name("netd")
    assert netd.exists(), "netd console script missing: run `make dev`"
    unit = tmp_path / "netd.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/netd", str(netd)))
    (tmp_path / "netd.socket").write_text(SOCKET.read_text())
    result = subprocess.run(["systemd-analyze", "verify", str(unit), str(tmp_path / "netd.socket")],
                            capture_output=True, text=True)
    problems = [line for line in result.stderr.splitlines() if "netd.s" in line]
    assert result.returncode == 0 and problems == [], result.stderr
