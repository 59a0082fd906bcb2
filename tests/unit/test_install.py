"""`make install` into a scratch prefix: the commands run and the unit points at them."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("make"), reason="needs root and make (installs Debian packages)")
def test_make_install_into_a_scratch_prefix(tmp_path):
    home, prefix, unitdir, cni = tmp_path / "opt", tmp_path / "usr", tmp_path / "units", tmp_path / "cni"
    subprocess.run(["make", "-C", str(ROOT), "install", f"NETD_HOME={home}", f"PREFIX={prefix}", f"UNITDIR={unitdir}",
                    f"CNI_BIN_DIR={cni}"],
                   check=True, capture_output=True, text=True, timeout=600)
    assert "usage: netd" in subprocess.run([prefix / "bin" / "netd", "--help"], capture_output=True, text=True).stdout
    assert "usage: netctl" in subprocess.run([prefix / "bin" / "netctl", "--help"], capture_output=True, text=True).stdout
    version = subprocess.run([cni / "netd-cni"], env={"CNI_COMMAND": "VERSION"}, input="",
                             capture_output=True, text=True).stdout
    assert "supportedVersions" in version
    unit = (unitdir / "netd.service").read_text()
    assert f"ExecStart={prefix}/bin/netd --log-format json" in unit
    assert not (unitdir / "netd.socket").exists()
