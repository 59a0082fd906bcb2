"""A private containerd runs a busybox image with `ctr run --cni`, networked by netd-cni.

ctr reads /etc/cni/net.d and /opt/cni/bin; a private mount namespace gives it
our own (an overlay on /etc, a tmpfs on /opt), so the machine's own CNI
config is neither read nor changed.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.images import IMAGE, busybox_oci_archive
from tests.sandbox import serve_http, unmount_below, wait_for

pytestmark = pytest.mark.skipif(
    not all(shutil.which(b) for b in ("containerd", "ctr", "busybox")) or not os.path.exists("/usr/lib/cni/loopback"),
    reason="needs Debian's containerd, containernetworking-plugins and busybox-static (make dev installs them)")
@pytest.fixture
def containerd(netd):
    home = netd.workdir / "containerd"
    home.mkdir()
    sock = home / "containerd.sock"
    (home / "config.toml").write_text(f'''version = 2
root = "{home}/root"
state = "{home}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
''')
    proc = subprocess.Popen(["containerd", "--config", str(home / "config.toml")],
                            stdout=subprocess.DEVNULL, stderr=open(home / "log", "w"))
    try:
        wait_for(lambda: subprocess.run(["ctr", "-a", str(sock), "version"], capture_output=True).returncode == 0,
                 "containerd", timeout=20)
        busybox_oci_archive(home / "busybox.tar")
        subprocess.run(["ctr", "-a", str(sock), "images", "import", str(home / "busybox.tar")],
                       check=True, capture_output=True, timeout=60)
        yield sock
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        subprocess.run(["pkill", "-f", f"containerd-shim.*{sock}"], capture_output=True)
        time.sleep(0.2)
        unmount_below(home)


def test_ctr_run_cni_gets_its_network_from_netd(netd, client, containerd):
    url = serve_http(netd)
    other = netd.container()
    other_ip = client.attach("other", pid=other.pid).ip_address.split("/")[0]
    cni = netd.workdir / "cni"
    (cni / "bin").mkdir(parents=True)
    (cni / "up").mkdir()
    (cni / "work").mkdir()
    (cni / "10-netd.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "netd", "plugins": [{"type": "netd-cni", "socket": str(netd.socket)}]}))
    plugin = cni / "bin" / "netd-cni"
    plugin.write_text(f"#!/bin/sh\nexec {sys.executable} -m netd.clients.cni \"$@\"\n")
    plugin.chmod(0o755)
    shutil.copy("/usr/lib/cni/loopback", cni / "bin" / "loopback")
    inside = f"ip addr show eth0; timeout 10 wget -q -O - {url}; ping -c1 -W2 {other_ip}"
    script = f"""set -e
mount -t overlay overlay -o lowerdir=/etc,upperdir={cni}/up,workdir={cni}/work /etc
rm -rf /etc/cni && mkdir -p /etc/cni/net.d && cp {cni}/10-netd.conflist /etc/cni/net.d/
mount -t tmpfs tmpfs /opt && mkdir -p /opt/cni/bin && cp {cni}/bin/* /opt/cni/bin/
exec ctr -a {containerd} run --rm --cni {IMAGE} ctr1 sh -c '{inside}'
"""
    etc_cni_before = os.path.exists("/etc/cni")
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "inet 10.89.0." in result.stdout and "hello from outside" in result.stdout
    assert "1 packets received" in result.stdout
    # ctr --rm called CNI DEL: only the other container is left, and the machine's /etc is as it was
    assert [e.container_id for e in client.list()] == ["other"]
    assert os.path.exists("/etc/cni") == etc_cni_before
