"""A private containerd runs a busybox image with `ctr run --cni`, networked by netd-cni.

ctr reads /etc/cni/net.d and /opt/cni/bin; a private mount namespace gives it
our own (an overlay on /etc, a tmpfs on /opt), so the machine's own CNI
config is neither read nor changed.
"""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.sandbox import serve_http, wait_for

pytestmark = pytest.mark.skipif(
    not all(shutil.which(b) for b in ("containerd", "ctr", "busybox")) or not os.path.exists("/usr/lib/cni/loopback"),
    reason="needs Debian's containerd, containernetworking-plugins and busybox-static (make dev installs them)")
IMAGE = "netd.test/busybox:1"


def busybox_oci_archive(path: Path) -> None:
    """An OCI image layout with one layer: busybox and a few applets."""
    layout = path.with_suffix(".d")
    (layout / "blobs" / "sha256").mkdir(parents=True)

    def blob(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (layout / "blobs" / "sha256" / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        bin_dir = tarfile.TarInfo("bin")
        bin_dir.type, bin_dir.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(bin_dir)
        tar.add(shutil.which("busybox"), arcname="bin/busybox")
        for applet in ("sh", "wget", "ping", "ip", "timeout"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    layer_bytes = layer.getvalue()
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_bytes).hexdigest()]}}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(json.dumps(config).encode())},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(layer_bytes)}]}
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **blob(json.dumps(manifest).encode()),
        "annotations": {"org.opencontainers.image.ref.name": IMAGE}}]}
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    with tarfile.open(path, "w") as tar:
        for entry in layout.iterdir():
            tar.add(entry, arcname=entry.name)


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
        for line in reversed(Path("/proc/mounts").read_text().splitlines()):
            if str(home) in line.split()[1]:
                subprocess.run(["umount", "-l", line.split()[1]], capture_output=True)


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
    plugin.write_text(f"#!/bin/sh\nexec {sys.executable} -m netd.cni \"$@\"\n")
    plugin.chmod(0o755)
    shutil.copy("/usr/lib/cni/loopback", cni / "bin" / "loopback")
    inside = f"ip addr show eth0; timeout 10 wget -q -O - {url}; ping -c1 -W2 {other_ip}"
    script = f"""set -e
mount -t overlay overlay -o lowerdir=/etc,upperdir={cni}/up,workdir={cni}/work /etc
mkdir -p /etc/cni/net.d && cp {cni}/10-netd.conflist /etc/cni/net.d/
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
