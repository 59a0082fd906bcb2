"""Podman with its CNI backend runs a busybox image on the netd network.

Podman reads a private containers.conf (CNI backend, our plugin and config
dirs) and a private storage.conf (vfs under the sandbox), so neither the
machine's Podman config nor its storage is read or changed.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.images import IMAGE, busybox_oci_archive
from tests.sandbox import serve_http, unmount_below

pytestmark = pytest.mark.skipif(not (shutil.which("podman") and shutil.which("busybox")),
                                reason="needs Debian's podman and busybox-static (make dev installs them)")


def test_podman_cni_backend_uses_netd(netd, client):
    home = netd.workdir / "podman"
    for d in ("netconf", "plugins", "root", "runroot", "tmp"):
        (home / d).mkdir(parents=True)
    (home / "containers.conf").write_text(f'''[network]
network_backend = "cni"
cni_plugin_dirs = ["{home}/plugins"]
network_config_dir = "{home}/netconf"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
tmp_dir = "{home}/tmp"
''')
    (home / "storage.conf").write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{home}/root"\nrunroot = "{home}/runroot"\n')
    (home / "netconf" / "netd.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "netd", "plugins": [{"type": "netd-cni", "socket": str(netd.socket)}]}))
    plugin = home / "plugins" / "netd-cni"
    plugin.write_text(f"#!/bin/sh\nexec {sys.executable} -m netd.cni \"$@\"\n")
    plugin.chmod(0o755)
    env = dict(os.environ, CONTAINERS_CONF=str(home / "containers.conf"),
               CONTAINERS_STORAGE_CONF=str(home / "storage.conf"))
    busybox_oci_archive(home / "busybox.tar")
    try:
        subprocess.run(["podman", "load", "-i", str(home / "busybox.tar")], env=env, check=True,
                       capture_output=True, timeout=120)
        url = serve_http(netd)
        # the sandbox's limits are lower than the ones Podman asks for by default
        result = subprocess.run(
            ["podman", "run", "--rm", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
             "--network", "netd", IMAGE, "sh", "-c", f"ip addr show eth0; timeout 10 wget -q -O - {url}"],
            env=env, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr
        assert "inet 10.89.0.2/16" in result.stdout and "hello from outside" in result.stdout
        assert client.list() == []  # --rm ran CNI DEL
    finally:
        unmount_below(home)
