"""netd-cni driven the way libcni drives a plugin: CNI_* environment, config on stdin."""

import json
import subprocess
import sys

from tests.integration.conftest import Client
from tests.sandbox import sh

CNI = [sys.executable, "-m", "netd.clients.cni"]


def cni(sandbox, command, container_id="", netns="", ifname="eth0", args="IgnoreUnknown=1", version="1.0.0",
        socket=None, extra=None):
    conf = {"cniVersion": version, "name": "netd", "type": "netd-cni", "socket": str(socket or sandbox.socket)}
    conf.update(extra or {})
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns, "CNI_IFNAME": ifname,
           "CNI_ARGS": args, "CNI_PATH": "/opt/cni/bin", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    result = subprocess.run(CNI, input=json.dumps(conf), env=env, capture_output=True, text=True, timeout=60)
    out = json.loads(result.stdout) if result.stdout.strip() else None
    return result.returncode, out


def test_add_check_del_by_netns_path(netd):
    path = netd.named_netns_add("pod1")
    name = path.rsplit("/", 1)[1]
    code, result = cni(netd, "ADD", "abc123", path, args="IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.89.0.77")
    assert code == 0, result
    assert result["cniVersion"] == "1.0.0"
    assert result["ips"] == [{"address": "10.89.0.77/16", "gateway": "10.89.0.1", "interface": 1}]
    assert result["interfaces"][1] == {"name": "eth0", "mac": "02:42:0a:59:00:4d", "sandbox": path}
    assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.89.0.1"}]
    assert "10.89.0.77/16" in sh("ip", "-n", name, "-br", "addr", "show", "eth0").stdout

    assert cni(netd, "CHECK", "abc123", path) == (0, None)
    sh("ip", "-n", name, "route", "del", "default")
    code, error = cni(netd, "CHECK", "abc123", path)
    assert code == 1 and error["code"] == 101 and "default route" in error["details"]

    assert cni(netd, "DEL", "abc123", path) == (0, None)
    assert cni(netd, "DEL", "abc123", path) == (0, None)  # idempotent
    assert cni(netd, "DEL", "abc123", "") == (0, None)  # the netns may be gone already
    assert "eth0" not in sh("ip", "-n", name, "-br", "link").stdout


def test_version_status_and_errors(netd):
    code, version = cni(netd, "VERSION")
    assert code == 0 and "1.1.0" in version["supportedVersions"]
    assert cni(netd, "STATUS", version="1.1.0") == (0, None)
    code, error = cni(netd, "ADD", "", "/run/netns/none")
    assert code == 1 and error["code"] == 4 and "CNI_CONTAINERID" in error["msg"]
    code, error = cni(netd, "ADD", "abc", "/run/netns/ntdt-missing")
    assert code == 1 and error["code"] == 3 and "netns_path" in error["msg"]
    code, error = cni(netd, "ADD", "abc", "/run/netns/x", version="0.1.0")
    assert code == 1 and error["code"] == 1
    code, error = cni(netd, "CHECK", "unknown", "/run/netns/x")
    assert code == 1 and error["code"] == 3


def test_0_4_0_results_carry_the_ip_version(netd):
    path = netd.named_netns_add("old")
    code, result = cni(netd, "ADD", "old1", path, version="0.4.0")
    assert code == 0 and result["ips"][0]["version"] == "4"


def test_netd_down_means_try_again_later(netd):
    netd.stop_netd()
    code, error = cni(netd, "ADD", "abc", "/run/netns/x")
    assert code == 1 and error["code"] == 11
    code, error = cni(netd, "STATUS", version="1.1.0")
    assert code == 1 and error["code"] == 50


def test_gc_releases_only_this_networks_stale_endpoints(netd, client):
    paths = [netd.named_netns_add(f"gc{i}") for i in range(3)]
    for i, path in enumerate(paths):
        assert cni(netd, "ADD", f"pod{i}", path)[0] == 0
    c = netd.container()
    client.attach("not-cni", pid=c.pid)
    valid = {"cni.dev/valid-attachments": [{"containerID": "pod1", "ifname": "eth0"}]}
    assert cni(netd, "GC", version="1.1.0", extra=valid) == (0, None)
    assert sorted(e.container_id for e in client.list()) == ["not-cni", "pod1"]
    assert {e.owner for e in client.list()} == {"cni:netd", ""}


def test_port_mappings_capability_publishes_ports(netd):
    path = netd.named_netns_add("pod2")
    mappings = {"runtimeConfig": {"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp",
                                                    "hostIP": ""}]}}
    code, result = cni(netd, "ADD", "web", path, extra=mappings)
    assert code == 0, result
    assert "18080" in netd.in_host("nft", "list", "table", "inet", netd.nft_table).stdout
    code, error = cni(netd, "ADD", "web2", netd.named_netns_add("pod3"), extra=mappings)
    assert code == 1 and "18080/tcp is already published by container web" in error["msg"]
    assert cni(netd, "DEL", "web", path) == (0, None)
    assert "18080" not in netd.in_host("nft", "list", "table", "inet", netd.nft_table).stdout


def test_del_without_a_network_leaves_the_containers_other_networks(sandbox):
    """Two conflists put one container on two netd networks; DEL of the one
    that names no network detaches only what it attached."""
    config = sandbox.workdir / "netd.toml"
    config.write_text('[[networks]]\nname = "default"\nsubnet = "10.89.0.0/16"\n\n'
                      '[[networks]]\nname = "blue"\nbridge = "br-blue"\nsubnet = "10.91.0.0/24"\n')
    sandbox.start_netd("--config", str(config))
    path = sandbox.named_netns_add("pod3")
    assert cni(sandbox, "ADD", "p3", path)[0] == 0
    assert cni(sandbox, "ADD", "p3", path, ifname="eth1", extra={"name": "blue-net", "network": "blue"})[0] == 0
    assert cni(sandbox, "DEL", "p3", path) == (0, None)
    client = Client(sandbox.socket)
    assert [(e.container_id, e.network) for e in client.list()] == [("p3", "blue")]
    assert cni(sandbox, "DEL", "p3", path, extra={"name": "blue-net", "network": "blue"}) == (0, None)
    assert client.list() == []
    client.channel.close()


def test_add_creates_the_network_the_conflist_names_with_its_subnet(netd, client):
    from netd.v1 import netd_pb2 as pb

    extra = {"network": "cninet", "subnet": "10.77.0.0/24", "capabilities": {"aliases": True},
             "runtimeConfig": {"aliases": {"cninet": ["cache"]}}}
    code, result = cni(netd, "ADD", "pod-a", netd.named_netns_add("cnia"), extra=extra)
    assert code == 0, result
    assert result["ips"][0]["address"] == "10.77.0.2/24"
    assert result["dns"] == {"nameservers": ["10.77.0.1"], "search": ["cninet.netd"]}
    code, result = cni(netd, "ADD", "pod-b", netd.named_netns_add("cnib"), extra=extra)  # exists now
    assert code == 0 and result["ips"][0]["address"] == "10.77.0.3/24"
    networks = {n.name: n for n in client.stub.ListNetworks(pb.ListNetworksRequest(), timeout=10).networks}
    assert networks["cninet"].source == "api" and dict(networks["cninet"].labels) == {"created-by": "cni:netd"}
    assert {e.container_id: list(e.aliases) for e in client.list()} == {"pod-a": ["cache"], "pod-b": ["cache"]}
