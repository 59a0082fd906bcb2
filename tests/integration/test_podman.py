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
from netd.v1 import netd_pb2 as pb
from tests.sandbox import serve_http, unmount_below, wait_for

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
        "cniVersion": "1.0.0", "name": "netd",
        "plugins": [{"type": "netd-cni", "socket": str(netd.socket), "capabilities": {"portMappings": True}}]}))
    plugin = home / "plugins" / "netd-cni"
    plugin.write_text(f"#!/bin/sh\nexec {sys.executable} -m netd.clients.cni \"$@\"\n")
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

        # `podman run -p` reaches netd as the portMappings capability
        limits = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
        subprocess.run(["podman", "run", "-d", "--name", "web", *limits, "--network", "netd", "-p", "18082:8080",
                        IMAGE, "sh", "-c", "busybox mkdir -p /www && echo hello from podman > /www/index.html "
                        "&& httpd -f -p 8080 -h /www"],
                       env=env, check=True, capture_output=True, timeout=180)
        assert [list(e.ports) for e in client.list()] == [[pb.PortMapping(protocol="tcp", host_port=18082,
                                                                          container_port=8080, range=1)]]
        fetch = "import urllib.request as u; print(u.urlopen('http://198.51.100.2:18082/index.html', timeout=5).read().decode())"
        wait_for(lambda: "hello from podman" in netd.in_outside(sys.executable, "-c", fetch, check=False).stdout,
                 "the published port answering from outside")
        subprocess.run(["podman", "rm", "-f", "web"], env=env, check=True, capture_output=True, timeout=120)
        assert client.list() == [] and "18082" not in netd.in_host("nft", "list", "ruleset").stdout
    finally:
        unmount_below(home)
