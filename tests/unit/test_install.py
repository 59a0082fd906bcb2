"""`make install` into a scratch prefix: the commands run and the unit points at them."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("make"), reason="needs root and make (installs Debian packages)")
def test_make_install_into_a_scratch_prefix(tmp_path):
    home, prefix, unitdir = tmp_path / "opt", tmp_path / "usr", tmp_path / "units"
    subprocess.run(["make", "-C", str(ROOT), "install", f"NETD_HOME={home}", f"PREFIX={prefix}", f"UNITDIR={unitdir}"],
                   check=True, capture_output=True, text=True, timeout=600)
    assert "usage: netd" in subprocess.run([prefix / "bin" / "netd", "--help"], capture_output=True, text=True).stdout
    assert "usage: netctl" in subprocess.run([prefix / "bin" / "netctl", "--help"], capture_output=True, text=True).stdout
    unit = (unitdir / "netd.service").read_text()
    assert f"ExecStart={prefix}/bin/netd --log-format json" in unit
