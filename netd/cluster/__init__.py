"""Many hosts, one container network: subnets leased in etcd, and the
routes between hosts (backends vxlan and host-gw). Opt-in: [cluster]."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

from netd.cluster.agent import Agent
from netd.cluster.etcd import Etcd
from netd.kernel import overlay
from netd.model import ClusterConfig, NetworkConfig

VXLAN_OVERHEAD = 50  # outer Ethernet, IPv4, UDP and VXLAN headers


def join(cluster: ClusterConfig, networks: tuple[NetworkConfig, ...], state_dir: Path, mark: str,
         uplink_mtu: int) -> tuple[Agent, tuple[NetworkConfig, ...]]:
    """Lease this host's subnet (before serving): the agent, and the networks
    with the cluster's network given its subnet, gateway and MTU."""
    name = cluster.node_name or socket.gethostname()
    public_ip = cluster.public_ip or overlay.default_address()
    agent = Agent(cluster, Etcd(cluster), overlay, state_dir / "cluster.json", name, public_ip, mark)
    subnet = agent.join()
    mtu = uplink_mtu - VXLAN_OVERHEAD if cluster.backend == "vxlan" else uplink_mtu
    return agent, tuple(
        replace(n, subnet=subnet, gateway=next(subnet.hosts()), mtu=n.mtu or mtu, cluster=cluster.network)
        if n.name == cluster.netd_network else n for n in networks)


__all__ = ["Agent", "join"]
