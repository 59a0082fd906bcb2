"""What the kernel should hold to reach the other hosts, given the lease
records: pure, so each backend is tested as data."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from netd.cluster.records import Node
from netd.kernel.overlay import Route


@dataclass(frozen=True)
class Plan:
    routes: dict[IPv4Network, Route] = field(default_factory=dict)
    neighbours: dict[IPv4Address, str] = field(default_factory=dict)  # vxlan: each host's VTEP address → its MAC
    forwarding: dict[str, IPv4Address] = field(default_factory=dict)  # vxlan: VTEP MAC → the host's public address
    unreachable: dict[str, str] = field(default_factory=dict)  # node → why netd cannot route to it


def vtep_of(node: Node) -> IPv4Address:
    """A host's VTEP address: its subnet's first (network) address, as flannel has it."""
    return node.subnet.network_address


def plan(me: str, nodes: Iterable[Node], backend: str, vxlan_index: int,
         on_link: Callable[[IPv4Address], bool]) -> Plan:
    """vxlan: a route to each other host's subnet via its VTEP address, on
    netd's device (onlink), the VTEP's permanent neighbour entry, and the
    forwarding entry sending its MAC to the host. host-gw: a route via the
    host's public address, which must be on one of this host's subnets."""
    result = Plan()
    for node in sorted(nodes, key=lambda n: n.subnet):
        if node.name == me:
            continue
        if node.backend != backend:
            result.unreachable[node.name] = f"it runs backend {node.backend}, this host {backend}"
        elif backend == "vxlan":
            result.routes[node.subnet] = Route(node.subnet, vtep_of(node), vxlan_index, onlink=True)
            result.neighbours[vtep_of(node)] = node.vtep_mac
            result.forwarding[node.vtep_mac] = node.public_ip
        elif on_link(node.public_ip):
            result.routes[node.subnet] = Route(node.subnet, node.public_ip)
        else:
            result.unreachable[node.name] = (f"host-gw needs its public address {node.public_ip} on one of this "
                                             f"host's subnets, and a router is between them: use backend vxlan")
    return result
