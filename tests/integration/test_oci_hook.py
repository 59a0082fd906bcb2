"""runc runs busybox containers whose network comes from netd through OCI hooks."""

import json
import shutil
import subprocess
import sys

import pytest

from tests.sandbox import serve_http, sh

pytestmark = pytest.mark.skipif(not (shutil.which("runc") and shutil.which("busybox")),
                                reason="needs Debian's runc and busybox-static (make dev installs them)")


def bundle(sandbox, name, annotations):
    root = sandbox.workdir / name
    (root / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy(shutil.which("busybox"), root / "rootfs" / "bin" / "busybox")
    for applet in ("sh", "sleep", "wget", "ping", "ip", "timeout", "cat"):
        (root / "rootfs" / "bin" / applet).symlink_to("busybox")
    sh("runc", "spec", "--bundle", str(root))
    config = json.loads((root / "config.json").read_text())
    config["process"].update(terminal=False, args=["sleep", "3600"])
    for kind in ("bounding", "effective", "permitted"):
        config["process"]["capabilities"][kind].append("CAP_NET_RAW")  # for ping
    hook = [sys.executable, "-m", "netd.clients.netctl", "--socket", str(sandbox.socket), "oci-hook"]
    config["hooks"] = {
        "createRuntime": [{"path": sys.executable, "args": [*hook, "attach"], "timeout": 30}],
        "poststop": [{"path": sys.executable, "args": [*hook, "detach"], "timeout": 30}],
    }
    config["annotations"] = annotations
    (root / "config.json").write_text(json.dumps(config))
    return root


def runc_run(runc, root, name):
    """`runc run -d`: its container keeps our stdout open, so no pipes (they would never close)."""
    log = root / "runc.err"
    with open(log, "w") as err:
        code = subprocess.run([*runc, "run", "-d", "--bundle", str(root), name], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=err, timeout=60).returncode
    return code, log.read_text()


def test_runc_containers_get_network_from_hooks(netd, client):
    url = serve_http(netd)
    state = str(netd.workdir / "runc")
    runc = ["runc", "--root", state]
    started = []
    try:
        for name, annotations in (("web", {"netd.ip": "10.89.0.50"}), ("db", {})):
            code, err = runc_run(runc, bundle(netd, name, annotations), name)
            assert code == 0, err
            started.append(name)
        endpoints = {e.container_id: e for e in client.list()}
        assert endpoints["web"].ip_address == "10.89.0.50/16"
        page = sh(*runc, "exec", "web", "timeout", "10", "wget", "-q", "-O", "-", url).stdout
        assert page == "hello from outside\n"
        db_ip = endpoints["db"].ip_address.split("/")[0]
        assert sh(*runc, "exec", "web", "ping", "-c1", "-W2", db_ip).returncode == 0
        for name in list(started):
            sh(*runc, "delete", "-f", name, timeout=60)
            started.remove(name)
        assert client.list() == []
        assert [l for l in netd.host_json("link", "show") if l.get("master") == "netd0"] == []
    finally:
        for name in started:
            subprocess.run([*runc, "delete", "-f", name], capture_output=True)


def test_the_hook_writes_the_networks_dns_into_the_containers_resolv_conf(netd, client):
    from netd.v1 import netd_pb2 as pb

    client.stub.CreateNetwork(pb.CreateNetworkRequest(name="blue"), timeout=10)
    runc = ["runc", "--root", str(netd.workdir / "runc")]
    resolv = netd.workdir / "resolv.conf"
    resolv.write_text("")  # exists before the container's mounts; the hook fills it
    root = bundle(netd, "named", {"netd.network": "blue", "netd.name": "api", "netd.resolv_conf": str(resolv)})
    config = json.loads((root / "config.json").read_text())
    config["mounts"].append({"destination": "/etc/resolv.conf", "type": "bind", "source": str(resolv),
                             "options": ["bind", "ro"]})
    (root / "config.json").write_text(json.dumps(config))
    try:
        code, err = runc_run(runc, root, "named")
        assert code == 0, err
        inside = sh(*runc, "exec", "named", "cat", "/etc/resolv.conf").stdout
        assert inside == "nameserver 10.90.0.1\nsearch blue.netd\n"
        assert [e.name for e in client.list()] == ["api"]
    finally:
        subprocess.run([*runc, "delete", "-f", "named"], capture_output=True)


def test_hook_failure_fails_the_container_start(netd):
    runc = ["runc", "--root", str(netd.workdir / "runc")]
    code, err = runc_run(runc, bundle(netd, "bad", {"netd.ip": "192.0.2.1"}), "bad")  # outside the subnet
    subprocess.run([*runc, "delete", "-f", "bad"], capture_output=True)
    assert code != 0 and "outside subnet" in err
