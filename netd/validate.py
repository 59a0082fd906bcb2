"""Pure checks of caller input. Each error names the field it is about."""

from __future__ import annotations

import re
from ipaddress import AddressValueError, IPv4Address, IPv4Network, IPv6Network, ip_address
from typing import Any

from netd.errors import AddressOutOfRange, InvalidArgument
from netd.model import DEFAULT_NETWORK, AttachRequest, NetworkConfig, PortMapping

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


DNS_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_ALIASES = 32


def dns_name(field: str, value: str) -> str:
    """A container's DNS name: one DNS label, compared without case."""
    label = value.lower()
    if not DNS_LABEL_RE.match(label):
        raise InvalidArgument(f"{field} {value[:70]!r} is not a DNS label: 1-63 of a-z 0-9 and -, "
                              "not starting or ending with -")
    return label


def default_name(container_id: str) -> str:
    """The container id as its name when it is a DNS label; a long hex id's
    first 12 (as `docker ps` shows it); else none."""
    label = container_id.lower()
    if DNS_LABEL_RE.match(label):
        return label
    if len(label) > 63 and all(c in "0123456789abcdef" for c in label):
        return label[:12]
    return ""


def aliases(values: list[str]) -> tuple[str, ...]:
    if len(values) > MAX_ALIASES:
        raise InvalidArgument(f"aliases: at most {MAX_ALIASES}")
    return tuple(dict.fromkeys(dns_name(f"aliases[{i}]", v) for i, v in enumerate(values)))


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
    name_: str = "",
    aliases_: list[str] = (),
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
        name=dns_name("name", name_) if name_ else default_name(cid),
        aliases=aliases(list(aliases_)),
    )


# A network's keys, in the config file and through CreateNetwork: key → type.
# (name and subnet are required.)
NETWORK_KEYS: dict[str, type] = {
    "name": str, "bridge": str, "subnet": str, "subnet6": str, "gateway": str, "mtu": int,
    "icc": bool, "masquerade": bool, "masquerade6": bool, "multicast_snooping": bool,
    "internal": bool, "dns": bool, "labels": dict,
}
NETWORK_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
DEFAULT_BRIDGE = "netd0"


def typed(where: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidArgument(f"{where} must be {kind.__name__}, not {type(value).__name__}")
    return value


def checked_table(where: str, raw: Any, keys: dict[str, type], required: tuple[str, ...], what: str) -> dict[str, Any]:
    """A TOML table checked against its known keys, their types and the required ones."""
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{where} must be a table")
    for key in raw:
        if key not in keys:
            raise InvalidArgument(f"{where}.{key} is not a {what} setting ({', '.join(keys)})")
    table = {key: typed(f"{where}.{key}", value, keys[key]) for key, value in raw.items()}
    for key in required:
        if key not in table:
            raise InvalidArgument(f"{where}.{key} is required")
    return table


def parse_network(where: str, raw: Any) -> NetworkConfig:
    """One [[networks]] table (or the flags' default network) → NetworkConfig."""
    net = checked_table(where, raw, NETWORK_KEYS, ("name", "subnet"), "network")
    name = net["name"]
    if not NETWORK_NAME_RE.match(name):
        raise InvalidArgument(f"{where}.name {name!r} must be 1-32 of a-z 0-9 _ . - starting with a letter or digit")
    bridge = net.get("bridge", DEFAULT_BRIDGE if name == DEFAULT_NETWORK else f"netd-{name}"[:15])
    try:
        ifname(bridge)
    except InvalidArgument as e:
        raise InvalidArgument(f"{where}.bridge: {e}") from None
    subnet = ipv4_subnet(f"{where}.subnet", net["subnet"])
    gateway = _gateway(f"{where}.gateway", net.get("gateway"), subnet)
    subnet6 = _subnet6(f"{where}.subnet6", net["subnet6"], subnet) if net.get("subnet6") else None
    mtu = net.get("mtu", 0)
    if mtu and not (1280 if subnet6 else 576) <= mtu <= 65535:
        raise InvalidArgument(f"{where}.mtu {mtu} is out of range {1280 if subnet6 else 576}..65535")
    internal = net.get("internal", False)
    return NetworkConfig(
        name=name, bridge=bridge, subnet=subnet, gateway=gateway, mtu=mtu, icc=net.get("icc", True),
        masquerade=net.get("masquerade", True) and not internal, subnet6=subnet6,
        masquerade6=net.get("masquerade6", False) and not internal,
        multicast_snooping=net.get("multicast_snooping", False), internal=internal, dns=net.get("dns", False),
        labels=labels(f"{where}.labels", net.get("labels", {})),
    )


def labels(where: str, value: dict) -> tuple[tuple[str, str], ...]:
    """Free-form key → value strings, a few kilobytes at most."""
    if len(value) > 64 or not all(isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 128 and len(v) <= 1024
                                  for k, v in value.items()):
        raise InvalidArgument(f"{where} must be at most 64 keys of 1-128 characters with values of at most 1024")
    return tuple(sorted(value.items()))


def ipv4_subnet(where: str, text: str) -> IPv4Network:
    try:
        subnet = IPv4Network(text)
    except ValueError as e:
        raise InvalidArgument(f"{where} {text!r} is not an IPv4 network: {e}") from None
    if subnet.prefixlen > 30:
        raise InvalidArgument(f"{where} {subnet} is too small: use a /30 or larger")
    return subnet


def _gateway(where: str, text: str | None, subnet: IPv4Network) -> IPv4Address:
    if text is None:
        return next(subnet.hosts())
    try:
        gateway = IPv4Address(text)
    except ValueError:
        raise InvalidArgument(f"{where} {text!r} is not an IPv4 address") from None
    if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"{where} {gateway} is not a host address of {subnet}")
    return gateway


def _subnet6(where: str, text: str, subnet: IPv4Network) -> IPv6Network:
    try:
        subnet6 = IPv6Network(text)
    except ValueError as e:
        raise InvalidArgument(f"{where} {text!r} is not an IPv6 network: {e}") from None
    if subnet6.num_addresses < subnet.num_addresses:
        # each container's IPv6 address mirrors its IPv4 offset in the subnet
        raise InvalidArgument(f"{where} {subnet6} is smaller than the IPv4 subnet {subnet}")
    return subnet6


def check_networks(networks: list[NetworkConfig], where: str) -> None:
    """Names and bridges unique, subnets disjoint."""
    for i, a in enumerate(networks):
        for b in networks[:i]:
            clash = ("name" if a.name == b.name else "bridge" if a.bridge == b.bridge
                     else "subnet" if a.subnet.overlaps(b.subnet)
                     else "subnet6" if a.subnet6 and b.subnet6 and a.subnet6.overlaps(b.subnet6) else "")
            if clash:
                raise InvalidArgument(f"{where}[{i}].{clash}: network {a.name} clashes with network {b.name}")
