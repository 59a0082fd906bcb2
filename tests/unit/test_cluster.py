"""Cluster mode's pure parts: the [cluster] table, lease records, candidates, the backends' plans."""

from ipaddress import IPv4Address, IPv4Network

import pytest

from netd import config
from netd.cluster import records
from netd.cluster.plan import plan
from netd.cluster.records import Node
from netd.errors import FailedPrecondition, InvalidArgument
from netd.kernel.overlay import Route
from netd.model import ClusterConfig

CLUSTER = ClusterConfig(("http://192.0.2.1:2379",), IPv4Network("10.244.0.0/16"))


def write(tmp_path, text):
    path = tmp_path / "netd.toml"
    path.write_text(text)
    return config.from_args(["--config", str(path)])


def test_the_cluster_table_leases_the_default_networks_subnet(tmp_path):
    cfg = write(tmp_path, '[cluster]\netcd_endpoints = ["https://192.0.2.1:2379"]\nnetwork = "10.244.0.0/16"\n'
                          'backend = "host-gw"\nlease_ttl = 8\netcd_ca = "/etc/netd/ca.pem"\n')
    assert cfg.cluster.backend == "host-gw" and cfg.cluster.lease_ttl == 8 and cfg.cluster.etcd_ca == "/etc/netd/ca.pem"
    assert cfg.networks[0].subnet == IPv4Network("10.244.0.0/16")  # stands in until the lease


@pytest.mark.parametrize("table,error", [
    ('network = "10.244.0.0/16"', "cluster.etcd_endpoints is required"),
    ('etcd_endpoints = ["etcd:2379"]\nnetwork = "10.244.0.0/16"', "http(s)://HOST:PORT"),
    ('etcd_endpoints = ["http://e:2379"]\nnetwork = "10.244.0.0/16"\nbackend = "gre"', "not vxlan or host-gw"),
    ('etcd_endpoints = ["http://e:2379"]\nnetwork = "10.244.0.0/16"\nsubnet_len = 16', "subnet_len 16"),
    ('etcd_endpoints = ["http://e:2379"]\nnetwork = "10.244.0.0/16"\nvni = 0', "vni 0 is out of range"),
    ('etcd_endpoints = ["http://e:2379"]\nnetwork = "10.244.0.0/16"\nzone = "a"', "zone is not a cluster setting"),
])
def test_a_bad_cluster_table_names_the_key(tmp_path, table, error):
    with pytest.raises(InvalidArgument, match=error.replace("(", r"\(").replace(")", r"\)")):
        write(tmp_path, f"[cluster]\n{table}\n")


def test_the_leased_network_has_no_subnet_of_its_own(tmp_path):
    with pytest.raises(InvalidArgument, match="subnet is leased"):
        write(tmp_path, '[cluster]\netcd_endpoints = ["http://e:2379"]\nnetwork = "10.244.0.0/16"\n'
                        '[[networks]]\nname = "default"\nsubnet = "10.89.0.0/16"\n')


def test_settings_must_match_what_etcd_holds():
    records.check_settings(CLUSTER, records.settings_of(CLUSTER))
    with pytest.raises(FailedPrecondition, match="network 10.244.0.0/16 here, 10.245.0.0/16 in etcd"):
        records.check_settings(CLUSTER, {**records.settings_of(CLUSTER), "network": "10.245.0.0/16"})


def test_lease_records_round_trip_and_garbage_is_ignored():
    node = Node("h1", IPv4Network("10.244.3.0/24"), IPv4Address("192.0.2.11"), "vxlan", "02:42:0a:f4:03:00")
    key = records.subnet_key("/netd", node.subnet)
    assert key == "/netd/subnets/10.244.3.0-24"
    assert Node.from_record(key, node.to_json()) == node
    assert Node.from_record(key, "{not json") is None
    assert Node.from_record("/netd/subnets/nonsense", node.to_json()) is None


def test_candidates_cover_the_range_from_any_start():
    first = records.candidates(CLUSTER, 0)
    assert len(first) == 256 and first[0] == IPv4Network("10.244.0.0/24")
    later = records.candidates(CLUSTER, 300)
    assert later[0] == IPv4Network("10.244.44.0/24") and sorted(later) == sorted(first)


NODES = [Node("h1", IPv4Network("10.244.1.0/24"), IPv4Address("192.0.2.11"), "vxlan", "02:42:0a:f4:01:00"),
         Node("h2", IPv4Network("10.244.2.0/24"), IPv4Address("192.0.2.12"), "vxlan", "02:42:0a:f4:02:00"),
         Node("h3", IPv4Network("10.244.3.0/24"), IPv4Address("198.51.100.13"), "vxlan", "02:42:0a:f4:03:00")]


def test_vxlan_routes_every_other_host_through_its_vtep():
    got = plan("h1", NODES, "vxlan", 9, on_link=lambda ip: False)
    assert got.routes == {n.subnet: Route(n.subnet, n.subnet.network_address, 9, onlink=True) for n in NODES[1:]}
    assert got.neighbours == {IPv4Address("10.244.2.0"): "02:42:0a:f4:02:00",
                              IPv4Address("10.244.3.0"): "02:42:0a:f4:03:00"}
    assert got.forwarding == {"02:42:0a:f4:02:00": IPv4Address("192.0.2.12"),
                              "02:42:0a:f4:03:00": IPv4Address("198.51.100.13")}
    assert got.unreachable == {}


def test_host_gw_routes_via_public_addresses_and_reports_hosts_behind_a_router():
    hostgw = [Node(n.name, n.subnet, n.public_ip, "host-gw") for n in NODES]
    got = plan("h1", hostgw, "host-gw", 0, on_link=lambda ip: ip.is_private and str(ip).startswith("192.0.2."))
    assert got.routes == {hostgw[1].subnet: Route(hostgw[1].subnet, hostgw[1].public_ip)}
    assert list(got.unreachable) == ["h3"] and "router" in got.unreachable["h3"]
    assert "backend vxlan" in plan("h1", NODES, "host-gw", 0, lambda ip: True).unreachable["h2"]
