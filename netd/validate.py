"""Pure checks of caller input. Each error names the field it is about."""

from __future__ import annotations

import re
from ipaddress import AddressValueError, IPv4Address

from netd.errors import AddressOutOfRange, InvalidArgument
from netd.model import AttachRequest, NetworkConfig

CONTAINER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_PID = 4194304  # PID_MAX_LIMIT on 64-bit kernels
MAX_PATH = 4096


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


def attach_request(
    network: NetworkConfig,
    *,
    container_id_: str,
    pid_: int,
    netns_path_: str,
    ifname_: str,
    ip_address: str,
    owner_: str = "",
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
    )
