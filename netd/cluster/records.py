"""What the cluster keeps in etcd, as plain data: its settings, written once
(PREFIX/config), and one lease record per host (PREFIX/subnets/A.B.C.D-LEN),
like flannel's subnet leases. Pure: unit-tested without etcd."""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from netd.errors import FailedPrecondition
from netd.model import ClusterConfig


def settings_of(cluster: ClusterConfig) -> dict:
    """What every host of the cluster must agree on."""
    return {"network": str(cluster.network), "subnet_len": cluster.subnet_len, "backend": cluster.backend,
            "vni": cluster.vni, "port": cluster.port}


def check_settings(cluster: ClusterConfig, stored: dict) -> None:
    """Refuse to join a cluster whose etcd says otherwise."""
    mine = settings_of(cluster)
    differ = [f"{key} {mine[key]} here, {stored.get(key)} in etcd" for key in mine if stored.get(key) != mine[key]]
    if differ:
        raise FailedPrecondition(f"cluster settings at {cluster.etcd_prefix}/config disagree with this host's "
                                 f"[cluster]: {'; '.join(differ)}")


@dataclass(frozen=True)
class Node:
    """A host of the cluster, as its lease record says."""

    name: str
    subnet: IPv4Network
    public_ip: IPv4Address
    backend: str
    vtep_mac: str = ""  # vxlan: the host's VXLAN device's MAC

    def to_json(self) -> str:
        return json.dumps({"node": self.name, "public_ip": str(self.public_ip), "backend": self.backend,
                           "vtep_mac": self.vtep_mac}, sort_keys=True)

    @classmethod
    def from_record(cls, key: str, value: str) -> Node | None:
        """The node of a lease record; None if the record is not one (or is garbled)."""
        subnet = subnet_of_key(key)
        try:
            data = json.loads(value)
            return cls(str(data["node"]), subnet, IPv4Address(data["public_ip"]), str(data["backend"]),
                       str(data.get("vtep_mac", ""))) if subnet else None
        except (ValueError, KeyError, TypeError):
            return None


def subnets_prefix(prefix: str) -> str:
    return f"{prefix}/subnets/"


def subnet_key(prefix: str, subnet: IPv4Network) -> str:
    return f"{subnets_prefix(prefix)}{subnet.network_address}-{subnet.prefixlen}"


def subnet_of_key(key: str) -> IPv4Network | None:
    address, _, length = key.rpartition("/")[2].partition("-")
    try:
        return IPv4Network(f"{address}/{length}")
    except ValueError:
        return None


def candidates(cluster: ClusterConfig, start: int = 0) -> list[IPv4Network]:
    """The subnets a host may lease, from the `start`th on, round the range:
    hosts starting at once try in different orders, so they rarely race
    for the same one (and an atomic create settles it when they do)."""
    subnets = list(cluster.network.subnets(new_prefix=cluster.subnet_len))
    start %= len(subnets)
    return subnets[start:] + subnets[:start]
