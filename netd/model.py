"""Plain data: what a network is, what a caller asks for, what an endpoint is."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network

# Host-side veth names are this prefix plus a hash of the container id, so a
# crash never leaves an unnamed orphan and reconcile can tell ours apart.
HOST_IFNAME_PREFIX = "vnd"
# BR_MAX_PORTS is 1024 and port number 0 is reserved, so a bridge takes 1023.
BRIDGE_MAX_PORTS = 1023
DEFAULT_NETWORK = "default"


@dataclass(frozen=True)
class NetworkConfig:
    name: str
    bridge: str
    subnet: IPv4Network
    gateway: IPv4Address
    mtu: int
    # Containers on the bridge may talk to each other (Docker's --icc).
    icc: bool = True
    masquerade: bool = True
    # Dual stack: each container's IPv6 address sits at the same offset in
    # subnet6 as its IPv4 address in subnet, so IPv4 allocation decides both.
    subnet6: IPv6Network | None = None
    masquerade6: bool = False
    # Snooping sends multicast only to the ports that joined its group, but
    # it makes each new port cost the kernel more the more ports the bridge
    # has (+1.3 ms per attach at 1000 ports, measured without netd). Off,
    # multicast is flooded like broadcast (as ARP is anyway).
    multicast_snooping: bool = False
    # In cluster mode, the cluster's whole range for the network whose subnet
    # this host leased: traffic to it is routed to the other hosts, not NATed.
    cluster: IPv4Network | None = None
    # No way out: nothing forwarded off the bridge, no NAT, no published ports.
    internal: bool = False
    # netd answers DNS on the gateway: the network's container names, and the rest forwarded.
    dns: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    # "config" (the config file: fixed while netd runs) or "api" (CreateNetwork: in the store).
    source: str = "config"

    # From (int, prefix length): parsing "a.b.c.d/n" costs 5x more (~15 µs per attach).
    def interface_for(self, address: IPv4Address) -> IPv4Interface:
        return IPv4Interface((int(address), self.subnet.prefixlen))

    def address6_for(self, address: IPv4Address) -> IPv6Interface | None:
        if self.subnet6 is None:
            return None
        offset = int(address) - int(self.subnet.network_address)
        return IPv6Interface((int(self.subnet6.network_address) + offset, self.subnet6.prefixlen))

    @property
    def gateway6(self) -> IPv6Address | None:
        found = self.address6_for(self.gateway)
        return found.ip if found else None

    @property
    def nameservers(self) -> list[IPv4Address | IPv6Address]:
        """Where its containers ask for names (the gateways), when dns is on."""
        return [a for a in (self.gateway, self.gateway6) if a]

    @property
    def search_domain(self) -> str:
        """Containers' names answer bare and under NETWORK.netd."""
        return f"{self.name}.netd"


IFF_UP, IFF_LOWER_UP = 0x1, 0x10000


@dataclass(frozen=True)
class Link:
    """A link as the kernel shows it."""

    index: int
    name: str
    flags: int
    mtu: int
    master: int
    kind: str
    mac: str = ""
    stats: tuple[int, ...] = (0,) * 8  # rx/tx packets, rx/tx bytes, rx/tx errors, rx/tx dropped
    alias: str = ""

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def carrier(self) -> bool:
        return bool(self.flags & IFF_LOWER_UP)


@dataclass(frozen=True)
class ClusterConfig:
    """Many hosts, one container network: each host leases a subnet of
    `network` in etcd and routes to the others' (the [cluster] table)."""

    etcd_endpoints: tuple[str, ...]
    network: IPv4Network
    subnet_len: int = 24
    backend: str = "vxlan"  # or "host-gw"
    vni: int = 1
    port: int = 8472
    node_name: str = ""  # "": the hostname
    public_ip: IPv4Address | None = None  # None: the uplink's address
    etcd_prefix: str = "/netd"
    etcd_ca: str = ""
    etcd_cert: str = ""
    etcd_key: str = ""
    lease_ttl: int = 20
    netd_network: str = DEFAULT_NETWORK  # the netd network whose subnet is leased


@dataclass(frozen=True)
class PortMapping:
    """A published port (or `count` consecutive ports), like `docker run -p`."""

    host_port: int
    container_port: int
    protocol: str = "tcp"
    # None: every host address (IPv6 ones too on a dual-stack network);
    # "::": every IPv6 address.
    host_ip: IPv4Address | IPv6Address | None = None
    count: int = 1

    def versions(self, dual_stack: bool) -> list[int]:
        """The IP versions the mapping publishes on, for a container with
        (dual_stack) or without an IPv6 address."""
        return [v for v in (4, 6) if (self.host_ip is None or self.host_ip.version == v) and (v == 4 or dual_stack)]

    @property
    def only_address(self) -> IPv4Address | IPv6Address | None:
        """The one host address the mapping is limited to, if any."""
        return None if self.host_ip is None or self.host_ip.is_unspecified else self.host_ip

    @property
    def host_ports(self) -> range:
        return range(self.host_port, self.host_port + self.count)

    def pairs(self) -> zip:
        """(host port, container port) for each port of the range."""
        return zip(self.host_ports, range(self.container_port, self.container_port + self.count))

    def overlaps(self, other: PortMapping) -> bool:
        """Would both claim some packet? Same protocol, a shared port, and
        host addresses that meet (None meets every address)."""
        mine, theirs = self.only_address, other.only_address
        same_family = bool(set(self.versions(True)) & set(other.versions(True)))
        same_ip = same_family and (mine is None or theirs is None or mine == theirs)
        shared = self.host_port < other.host_port + other.count and other.host_port < self.host_port + self.count
        return self.protocol == other.protocol and same_ip and shared

    def __str__(self) -> str:
        """`docker ps` style: 0.0.0.0:8080->80/tcp, 8000-8009->9000-9009/udp."""
        def span(first: int) -> str:
            return f"{first}-{first + self.count - 1}" if self.count > 1 else str(first)
        host = f"[{self.host_ip}]" if self.host_ip and self.host_ip.version == 6 else self.host_ip or "0.0.0.0"
        return f"{host}:{span(self.host_port)}->{span(self.container_port)}/{self.protocol}"


@dataclass(frozen=True)
class AttachRequest:
    container_id: str
    pid: int = 0
    netns_path: str = ""
    ifname: str = "eth0"
    ip_address: IPv4Address | None = None
    owner: str = ""
    ports: tuple[PortMapping, ...] = ()
    network: str = ""  # "": the default network
    name: str = ""  # its DNS name ("": none)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetnsId:
    """Identity of a network namespace: its nsfs inode, stable while it lives."""

    dev: int
    ino: int

    def __str__(self) -> str:
        return f"{self.dev}:{self.ino}"

    @classmethod
    def parse(cls, text: str) -> NetnsId:
        dev, ino = text.split(":")
        return cls(int(dev), int(ino))


@dataclass(frozen=True)
class Endpoint:
    container_id: str
    network: str
    ifname: str
    host_ifname: str
    address: IPv4Interface
    gateway: IPv4Address
    mac_address: str
    pid: int
    netns_path: str
    netns_id: NetnsId
    created_at: str
    host_ifindex: int = 0
    owner: str = ""
    ports: tuple[PortMapping, ...] = ()
    address6: IPv6Interface | None = None
    gateway6: IPv6Address | None = None
    # False from the moment the address is reserved until the kernel side is
    # complete: reconcile rolls back endpoints that never became ready.
    ready: bool = False
    name: str = ""  # its DNS name on the network ("": none)
    aliases: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """One endpoint per container and network."""
        return self.network, self.container_id

    @property
    def dual_stack(self) -> bool:
        return self.address6 is not None


def host_ifname_for(container_id: str, network: str = DEFAULT_NETWORK, mark: str = "netd") -> str:
    """The host end's name: netd's prefix and a hash of the endpoint's key
    and the netd instance's mark, so two netds on one host never want the
    same name for the same container id."""
    digest = hashlib.sha256(f"{mark}\0{network}\0{container_id}".encode()).hexdigest()
    return HOST_IFNAME_PREFIX + digest[: 15 - len(HOST_IFNAME_PREFIX)]


def mac_for(address: IPv4Address) -> str:
    """Locally administered MAC derived from the address, like Docker's 02:42:…

    A reused address then comes back with the same MAC, so neighbours' ARP
    caches stay right.
    """
    return "02:42:" + ":".join(f"{b:02x}" for b in address.packed)
