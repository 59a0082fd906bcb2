"""Pure checks of caller input. Each error names the field it is about."""

from __future__ import annotations

import re
from ipaddress import AddressValueError, IPv4Address, ip_address

from netd.errors import AddressOutOfRange, InvalidArgument
from netd.model import AttachRequest, NetworkConfig, PortMapping

CONTAINER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_PID = 4194304  # PID_MAX_LIMIT on 64-bit kernels
MAX_PATH = 4096
# Each published port is a DNAT rule; a range is expanded port by port.
MAX_PUBLISHED_PORTS = 1024


def container_id(value: str) -> str:
    if not value:
        raise InvalidArgument("container_id is required")
    if not CONTAINER_ID_RE.match(value):
        raise InvalidArgument(
            f"container_id {value[:64]!r} is invalid: use 1-128 characters of "
            "A-Z a-z 0-9 _ . - starting with a letter or digit"
        )
    return value


def ifname(value: str) -> str:
    """The kernel's rules (dev_valid_name) plus: not `lo`, printable ASCII."""
    if not value:
        return "eth0"
    encoded = value.encode("utf-8", "surrogatepass")
    if len(encoded) > 15:
        raise InvalidArgument(f"ifname {value[:32]!r} is longer than 15 bytes")
    if value in (".", "..", "lo"):
        raise InvalidArgument(f"ifname {value!r} is reserved")
    if any(c in value for c in "/:") or not all(33 <= ord(c) < 127 for c in value):
        raise InvalidArgument(
            f"ifname {value!r} may hold only printable ASCII without space, '/' or ':'"
        )
    return value


def network(value: str) -> str:
    """A network name from a request; whether it exists is the service's call."""
    if len(value) > 64 or not all(33 <= ord(c) < 127 for c in value):
        raise InvalidArgument(f"network {value[:64]!r} is not a network name")
    return value


def pid(value: int) -> int:
    if value < 0 or value > MAX_PID:
        raise InvalidArgument(f"pid {value} is out of range 1..{MAX_PID}")
    if value == 1:
        raise InvalidArgument("pid 1 is the init process, not a container")
    return value


def netns_path(value: str) -> str:
    if len(value) > MAX_PATH or "\0" in value:
        raise InvalidArgument("netns_path is not a valid path")
    if value and not value.startswith("/"):
        raise InvalidArgument(f"netns_path {value!r} must be absolute")
    return value


def owner(value: str) -> str:
    if len(value) > 64 or not all(32 <= ord(c) < 127 for c in value):
        raise InvalidArgument("owner must be at most 64 printable ASCII characters")
    return value


def static_address(value: str, network: NetworkConfig) -> IPv4Address | None:
    if not value:
        return None
    try:
        address = IPv4Address(value)
    except AddressValueError:
        raise InvalidArgument(
            f"ip_address {value[:64]!r} is not an IPv4 address (no prefix length)"
        ) from None
    subnet = network.subnet
    if address not in subnet:
        raise AddressOutOfRange(f"ip_address {address} is outside subnet {subnet}")
    if address == network.gateway:
        raise AddressOutOfRange(f"ip_address {address} is the gateway of {subnet}")
    if subnet.prefixlen < 31 and address in (subnet.network_address, subnet.broadcast_address):
        raise AddressOutOfRange(
            f"ip_address {address} is the network or broadcast address of {subnet}"
        )
    return address


def port_mapping(field: str, protocol: str, host_ip: str, host_port: int, container_port: int,
                 count: int) -> PortMapping:
    protocol = protocol.lower() or "tcp"
    if protocol not in ("tcp", "udp"):
        raise InvalidArgument(f"{field}.protocol {protocol[:16]!r} is not tcp or udp")
    count = count or 1
    for name, port in (("host_port", host_port), ("container_port", container_port)):
        if not 1 <= port <= 65535:
            raise InvalidArgument(f"{field}.{name} {port} is out of range 1..65535")
        if port + count - 1 > 65535:
            raise InvalidArgument(f"{field}.range {count} takes {name} {port} past 65535")
    address = None
    if host_ip:
        try:
            address = ip_address(host_ip.removeprefix("[").removesuffix("]"))
        except ValueError:
            raise InvalidArgument(f"{field}.host_ip {host_ip[:64]!r} is not an IP address") from None
        if address.is_multicast or address == IPv4Address("255.255.255.255"):
            raise InvalidArgument(f"{field}.host_ip {address} is not a unicast address")
        if address.version == 6 and address.is_loopback:
            # IPv6 has no route_localnet: the kernel never routes ::1 off the host.
            raise InvalidArgument(f"{field}.host_ip ::1 cannot be published to a container (only 127.0.0.1)")
        if address == IPv4Address("0.0.0.0"):  # as Docker and CNI runtimes write "every address"
            address = None
    return PortMapping(host_port, container_port, protocol, address, count)


def ports(items: list[tuple[str, str, int, int, int]], network: NetworkConfig) -> tuple[PortMapping, ...]:
    """(protocol, host_ip, host_port, container_port, range) per mapping."""
    mappings: list[PortMapping] = []
    for i, item in enumerate(items):
        mapping = port_mapping(f"ports[{i}]", *item)
        if mapping.host_ip and mapping.host_ip.version == 6 and network.subnet6 is None:
            raise InvalidArgument(f"ports[{i}].host_ip {mapping.host_ip} is IPv6, "
                                  f"but network {network.name} has no subnet6")
        clash = next((m for m in mappings if m.overlaps(mapping)), None)
        if clash is not None:
            raise InvalidArgument(f"ports[{i}] {mapping} overlaps {clash} in the same request")
        mappings.append(mapping)
    if sum(m.count for m in mappings) > MAX_PUBLISHED_PORTS:
        raise InvalidArgument(f"ports publish more than {MAX_PUBLISHED_PORTS} ports")
    return tuple(mappings)


def attach_request(
    network: NetworkConfig,
    *,
    container_id_: str,
    pid_: int,
    netns_path_: str,
    ifname_: str,
    ip_address: str,
    owner_: str = "",
    ports_: list[tuple[str, str, int, int, int]] = (),
) -> AttachRequest:
    """Turn raw request fields into an AttachRequest or raise InvalidArgument."""
    cid = container_id(container_id_)
    pid(pid_)
    netns_path(netns_path_)
    if bool(pid_) == bool(netns_path_):
        raise InvalidArgument("exactly one of pid and netns_path must be set")
    return AttachRequest(
        container_id=cid,
        pid=pid_,
        netns_path=netns_path_,
        ifname=ifname(ifname_),
        ip_address=static_address(ip_address, network),
        owner=owner(owner_),
        ports=ports(list(ports_), network),
        network=network.name,
    )
