"""Address allocation as pure functions: given what is used, pick the next.

Round robin like CNI host-local: continue after the last address handed out,
so a just-released address is not reused at once (stale ARP and conntrack
entries for it get time to expire).
"""

from __future__ import annotations

from collections.abc import Collection
from ipaddress import IPv4Address, IPv4Network

from netd.errors import AddressInUse, PoolExhausted
from netd.model import NetworkConfig


def usable_bounds(network: NetworkConfig) -> tuple[int, int]:
    """First and last assignable host address as integers."""
    subnet = network.subnet
    first, last = int(subnet.network_address), int(subnet.broadcast_address)
    if subnet.prefixlen < 31:
        first, last = first + 1, last - 1
    return first, last


def capacity(network: NetworkConfig) -> int:
    first, last = usable_bounds(network)
    return last - first + 1 - (1 if first <= int(network.gateway) <= last else 0)


def next_free(
    network: NetworkConfig, used: Collection[IPv4Address], last: IPv4Address | None
) -> IPv4Address:
    first, end = usable_bounds(network)
    if len(used) >= capacity(network):
        raise PoolExhausted(f"no free address left in subnet {network.subnet} of network {network.name}")
    gateway = int(network.gateway)
    start = int(last) + 1 if last is not None and first <= int(last) < end else first
    size = end - first + 1
    # Round robin usually finds a free address at the first try: test
    # candidates one by one instead of converting the whole used set.
    for step in range(size):
        candidate = first + (start - first + step) % size
        if candidate != gateway and (address := IPv4Address(candidate)) not in used:
            return address
    raise PoolExhausted(f"no free address left in subnet {network.subnet} of network {network.name}")


def pick(
    network: NetworkConfig,
    used: Collection[IPv4Address],
    last: IPv4Address | None,
    requested: IPv4Address | None,
) -> IPv4Address:
    """The requested address if free (validate.static_address checked its range), else the next free."""
    if requested is None:
        return next_free(network, used, last)
    if requested in used:
        raise AddressInUse(f"ip_address {requested} is already assigned to another endpoint")
    return requested


def pick_subnet(pools: tuple[tuple[IPv4Network, int], ...], taken: list[IPv4Network]) -> IPv4Network:
    """The first subnet of the pools (base, prefix length), in order, that
    overlaps none taken, like Docker's default address pools."""
    for base, length in pools:
        for candidate in base.subnets(new_prefix=length):
            if not any(candidate.overlaps(t) for t in taken):
                return candidate
    raise PoolExhausted(f"subnet: the address pools ({', '.join(f'{b} by /{n}' for b, n in pools)}) have no free subnet")
