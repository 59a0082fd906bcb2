"""Flags and the config file → a validated DaemonConfig with its networks.

Precedence: a flag given on the command line, then the config file
(`--config`, TOML), then the defaults. With no file there is one network,
"default", described by the network flags; with a file the networks are
exactly its `[[networks]]`, and the network flags override the one named
"default".
"""

from __future__ import annotations

import argparse
import re
import tomllib
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network, ip_address
from pathlib import Path
from typing import Any

from netd.clients import DEFAULT_SOCKET
from netd.errors import InvalidArgument
from netd.model import DEFAULT_NETWORK, ClusterConfig, NetworkConfig
from netd.validate import DEFAULT_BRIDGE, check_networks, checked_table, ipv4_subnet, parse_network, typed

DEFAULT_STATE_DIR = "/var/lib/netd"
DEFAULT_SUBNET = "10.89.0.0/16"

# Global settings: key → (default, type). The same names as the flags, with _.
GLOBALS: dict[str, tuple[Any, type]] = {
    "socket": (DEFAULT_SOCKET, str),
    "state_dir": (DEFAULT_STATE_DIR, str),
    "firewall": ("auto", str),
    "firewall_check_interval": (2.0, float),
    "socket_group": ("", str),
    "metrics_address": ("", str),
    "log_format": ("", str),
    "manage_accept_ra": (True, bool),
    "dns_upstreams": ([], list),
    "default_address_pools": ([{"base": "10.90.0.0/16", "size": 24}], list),
}
# Flags that describe the default network (named like its keys).
NETWORK_FLAGS = ("bridge", "subnet", "subnet6", "mtu", "icc")
# [cluster] keys: key → type. (etcd_endpoints and network are required.)
CLUSTER_KEYS: dict[str, type] = {
    "etcd_endpoints": list, "etcd_prefix": str, "etcd_ca": str, "etcd_cert": str, "etcd_key": str,
    "network": str, "subnet_len": int, "backend": str, "vni": int, "port": int, "node_name": str,
    "public_ip": str, "lease_ttl": int, "netd_network": str,
}


@dataclass(frozen=True)
class DaemonConfig:
    socket: Path
    state_dir: Path
    log_format: str
    firewall: str
    socket_group: str
    firewall_check_interval: float
    metrics_address: str  # "" = no metrics endpoint
    networks: tuple[NetworkConfig, ...]  # mtu 0: take the uplink's
    manage_accept_ra: bool = True
    cluster: ClusterConfig | None = None  # None: this host is an island
    dns_upstreams: tuple[str, ...] = ()  # (): the host's, from /etc/resolv.conf
    config_file: str = ""
    address_pools: tuple[tuple[IPv4Network, int], ...] = ((IPv4Network("10.90.0.0/16"), 24),)


def parser() -> argparse.ArgumentParser:
    # Defaults are None so that a flag given can be told from one left out.
    p = argparse.ArgumentParser(prog="netd", description="Container networking daemon.")
    p.add_argument("--config", metavar="FILE", help="TOML config file: settings and [[networks]]")
    p.add_argument("--socket", help=f"gRPC Unix socket (default {DEFAULT_SOCKET})")
    p.add_argument("--state-dir", help=f"state directory (default {DEFAULT_STATE_DIR})")
    p.add_argument("--bridge", help=f"bridge of the default network (default {DEFAULT_BRIDGE})")
    p.add_argument("--subnet", help=f"IPv4 subnet of the default network (default {DEFAULT_SUBNET})")
    p.add_argument("--subnet6", help="IPv6 subnet of the default network: dual stack (default: IPv4 only)")
    p.add_argument("--mtu", type=int, help="MTU of bridge and veths (default: the uplink's)")
    p.add_argument("--no-icc", dest="icc", action="store_false", default=None,
                   help="block traffic between containers on the bridge (published ports still work)")
    p.add_argument("--firewall", choices=["auto", "nftables", "iptables", "none"],
                   help="firewall driver (default auto: nftables if installed)")
    p.add_argument("--firewall-check-interval", type=float, metavar="SECONDS",
                   help="how often netd checks that its firewall rules, bridges and pinned neighbour entries "
                        "are still in place (default 2)")
    p.add_argument("--socket-group", help="group owning the socket (default root)")
    p.add_argument("--metrics-address", metavar="HOST:PORT", help="serve Prometheus metrics here (default: off)")
    p.add_argument("--log-format", choices=["json", "console"],
                   help="default: console on a terminal, JSON lines otherwise")
    p.add_argument("--no-manage-accept-ra", dest="manage_accept_ra", action="store_false", default=None,
                   help="refuse to start rather than set accept_ra=2 on an uplink that IPv6 forwarding "
                        "would make ignore router advertisements")
    return p


def load_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise InvalidArgument(f"--config {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidArgument(f"--config {path}: not valid TOML: {e}") from None


def parse_cluster(where: str, raw: Any) -> ClusterConfig:
    """The [cluster] table."""
    c = checked_table(where, raw, CLUSTER_KEYS, ("etcd_endpoints", "network"), "cluster")
    endpoints = c["etcd_endpoints"]
    if not endpoints or not all(isinstance(e, str) and re.match(r"^https?://[^/\s]+$", e) for e in endpoints):
        raise InvalidArgument(f"{where}.etcd_endpoints must be a non-empty list of http(s)://HOST:PORT URLs")
    network = ipv4_subnet(f"{where}.network", c["network"])
    subnet_len = c.get("subnet_len", 24)
    if not network.prefixlen < subnet_len <= 30:
        raise InvalidArgument(f"{where}.subnet_len {subnet_len} must be longer than {network}'s and at most 30")
    backend = c.get("backend", "vxlan")
    if backend not in ("vxlan", "host-gw"):
        raise InvalidArgument(f"{where}.backend {backend!r} is not vxlan or host-gw")
    for key, low, high in (("vni", 1, 2**24 - 1), ("port", 1, 65535), ("lease_ttl", 5, 3600)):
        if key in c and not low <= c[key] <= high:
            raise InvalidArgument(f"{where}.{key} {c[key]} is out of range {low}..{high}")
    public_ip = None
    if c.get("public_ip"):
        try:
            public_ip = IPv4Address(c["public_ip"])
        except ValueError:
            raise InvalidArgument(f"{where}.public_ip {c['public_ip']!r} is not an IPv4 address") from None
    prefix = c.get("etcd_prefix", "/netd")
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise InvalidArgument(f"{where}.etcd_prefix {prefix!r} must start with / and not end with one")
    return ClusterConfig(
        etcd_endpoints=tuple(endpoints), network=network, subnet_len=subnet_len, backend=backend,
        vni=c.get("vni", 1), port=c.get("port", 8472), node_name=c.get("node_name", ""), public_ip=public_ip,
        etcd_prefix=prefix, etcd_ca=c.get("etcd_ca", ""), etcd_cert=c.get("etcd_cert", ""),
        etcd_key=c.get("etcd_key", ""), lease_ttl=c.get("lease_ttl", 20),
        netd_network=c.get("netd_network", DEFAULT_NETWORK),
    )


def leased_network(raw: dict[str, Any], cluster: ClusterConfig, where: str) -> dict[str, Any]:
    """The cluster's netd network before its lease: no subnet of its own
    (netd leases one); until then the cluster's range stands in."""
    if "subnet" in raw:
        raise InvalidArgument(f"{where}.subnet: network {cluster.netd_network}'s subnet is leased from the cluster's "
                              f"{cluster.network}, not configured")
    return {**raw, "subnet": str(cluster.network)}


def _flag_network(given: dict[str, Any], base: dict[str, Any]) -> NetworkConfig:
    """The default network from the flags (over `base`), errors naming the flag."""
    try:
        return parse_network("default network", {**base, **given})
    except InvalidArgument as e:
        key = next((k for k in given if f".{k}" in str(e)), None)
        raise InvalidArgument(str(e).replace(f"default network.{key}", f"--{key}") if key else str(e)) from None


def from_args(argv: list[str] | None, *, isatty: bool = False) -> DaemonConfig:
    args = parser().parse_args(argv)
    file = load_file(args.config) if args.config else {}
    where = f"config {args.config}"
    for key in file:
        if key not in GLOBALS and key not in ("networks", "cluster"):
            raise InvalidArgument(f"{where}: {key} is not a setting ({', '.join([*GLOBALS, 'networks', 'cluster'])})")
    cluster = parse_cluster(f"{where}: cluster", file["cluster"]) if "cluster" in file else None
    settings = {}
    for key, (default, kind) in GLOBALS.items():
        flag = getattr(args, key, None)  # some settings are the file's only
        settings[key] = flag if flag is not None else typed(f"{where}: {key}", file.get(key, default), kind)

    given = {key: getattr(args, key) for key in NETWORK_FLAGS if getattr(args, key) is not None}
    if cluster and "subnet" in given:
        raise InvalidArgument(f"--subnet: in cluster mode the subnet is leased from {cluster.network}")
    raw_networks = file.get("networks")
    if raw_networks is None:
        base = {"name": DEFAULT_NETWORK, "subnet": DEFAULT_SUBNET}
        if cluster:
            base = leased_network({"name": cluster.netd_network}, cluster, f"{where}: cluster")
        networks = [_flag_network(given, base)]
    else:
        if not isinstance(raw_networks, list) or not raw_networks:
            raise InvalidArgument(f"{where}: networks must be a non-empty list of [[networks]] tables")
        raw_networks = [leased_network(raw, cluster, f"{where}: networks[{i}]")
                        if cluster and isinstance(raw, dict) and raw.get("name") == cluster.netd_network else raw
                        for i, raw in enumerate(raw_networks)]
        networks = [parse_network(f"{where}: networks[{i}]", raw) for i, raw in enumerate(raw_networks)]
        if given:
            names = [n.name for n in networks]
            if DEFAULT_NETWORK not in names:
                flag = next(iter(given))
                raise InvalidArgument(f"--{flag} applies to network {DEFAULT_NETWORK!r}, which {where} does not define")
            i = names.index(DEFAULT_NETWORK)
            networks[i] = _flag_network(given, raw_networks[i])
    check_networks(networks, f"{where}: networks")
    if cluster and cluster.netd_network not in [n.name for n in networks]:
        raise InvalidArgument(f"{where}: cluster.netd_network {cluster.netd_network!r} is not one of the networks")

    if settings["metrics_address"] and not settings["metrics_address"].rpartition(":")[2].isdigit():
        raise InvalidArgument(f"metrics_address {settings['metrics_address']!r} must be HOST:PORT")
    if settings["firewall_check_interval"] <= 0:
        raise InvalidArgument("firewall_check_interval must be positive")
    if settings["firewall"] not in ("auto", "nftables", "iptables", "none"):
        raise InvalidArgument(f"{where}: firewall {settings['firewall']!r} is not auto, nftables, iptables or none")
    if settings["log_format"] not in ("", "json", "console"):
        raise InvalidArgument(f"{where}: log_format {settings['log_format']!r} is not json or console")
    return DaemonConfig(
        socket=Path(settings["socket"]),
        state_dir=Path(settings["state_dir"]),
        log_format=settings["log_format"] or ("console" if isatty else "json"),
        firewall=settings["firewall"],
        socket_group=settings["socket_group"],
        firewall_check_interval=settings["firewall_check_interval"],
        metrics_address=settings["metrics_address"],
        networks=tuple(networks),
        manage_accept_ra=settings["manage_accept_ra"],
        cluster=cluster,
        config_file=args.config or "",
        dns_upstreams=upstreams(f"{where}: dns_upstreams", settings["dns_upstreams"]),
        address_pools=pools(f"{where}: default_address_pools", settings["default_address_pools"]),
    )


def upstreams(where: str, values: list) -> tuple[str, ...]:
    try:
        return tuple(str(ip_address(v)) for v in values)
    except ValueError:
        raise InvalidArgument(f"{where} must be a list of IP addresses") from None


def pools(where: str, values: list) -> tuple[tuple[IPv4Network, int], ...]:
    """[{base = "10.90.0.0/16", size = 24}, …], as Docker's default-address-pools."""
    found = []
    for i, pool in enumerate(values):
        if not isinstance(pool, dict) or set(pool) != {"base", "size"} or not isinstance(pool["size"], int):
            raise InvalidArgument(f"{where}[{i}] must be a table with base (a CIDR) and size (a prefix length)")
        base = ipv4_subnet(f"{where}[{i}].base", pool["base"])
        if not base.prefixlen <= pool["size"] <= 30:
            raise InvalidArgument(f"{where}[{i}].size {pool['size']} must be {base.prefixlen}..30")
        found.append((base, pool["size"]))
    return tuple(found)


def networks(cfg: DaemonConfig, uplink_mtu: int) -> tuple[NetworkConfig, ...]:
    """The networks with an MTU each: their own, else the uplink's."""
    return tuple(replace(n, mtu=n.mtu or uplink_mtu) for n in cfg.networks)
