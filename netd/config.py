"""Command-line flags → a validated daemon configuration and NetworkConfig."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

from netd import validate
from netd.errors import InvalidArgument
from netd.model import NetworkConfig

DEFAULT_SOCKET = "/run/netd/netd.sock"
DEFAULT_STATE_DIR = "/var/lib/netd"
DEFAULT_BRIDGE = "netd0"
DEFAULT_SUBNET = "10.89.0.0/16"


@dataclass(frozen=True)
class DaemonConfig:
    socket: Path
    state_dir: Path
    log_format: str
    firewall: str
    socket_group: str
    firewall_check_interval: float
    bridge: str
    subnet: IPv4Network
    mtu: int  # 0: take the uplink's
    icc: bool
    metrics_address: str  # "" = no metrics endpoint


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netd", description="Container networking daemon.")
    p.add_argument("--socket", default=DEFAULT_SOCKET, help="gRPC Unix socket (default %(default)s)")
    p.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="state directory (default %(default)s)")
    p.add_argument("--bridge", default=DEFAULT_BRIDGE, help="bridge name (default %(default)s)")
    p.add_argument("--subnet", default=DEFAULT_SUBNET, help="IPv4 subnet (default %(default)s)")
    p.add_argument("--mtu", type=int, default=0, help="MTU of bridge and veths (default: the uplink's)")
    p.add_argument("--no-icc", dest="icc", action="store_false",
                   help="block traffic between containers on the bridge (published ports still work)")
    p.add_argument("--firewall", default="auto", choices=["auto", "nftables", "iptables", "none"],
                   help="firewall driver (default %(default)s: nftables if installed)")
    p.add_argument("--firewall-check-interval", type=float, default=2.0, metavar="SECONDS",
                   help="how often netd checks that its firewall rules are still in place")
    p.add_argument("--socket-group", default="", help="group owning the socket (default root)")
    p.add_argument("--metrics-address", default="", metavar="HOST:PORT",
                   help="serve Prometheus metrics here (default: off)")
    p.add_argument("--log-format", choices=["json", "console"], default=None,
                   help="default: console on a terminal, JSON lines otherwise")
    return p


def parse_subnet(text: str) -> IPv4Network:
    try:
        subnet = IPv4Network(text)
    except ValueError as e:
        raise InvalidArgument(f"--subnet {text!r} is not an IPv4 network: {e}") from None
    if subnet.prefixlen > 30:
        raise InvalidArgument(f"--subnet {subnet} is too small: use a /30 or larger")
    return subnet


def from_args(argv: list[str] | None, *, isatty: bool = False) -> DaemonConfig:
    args = parser().parse_args(argv)
    try:
        validate.ifname(args.bridge)
    except InvalidArgument as e:
        raise InvalidArgument(f"--bridge: {e}") from None
    if args.mtu and not 576 <= args.mtu <= 65535:
        raise InvalidArgument(f"--mtu {args.mtu} is out of range 576..65535")
    if args.metrics_address and not args.metrics_address.rpartition(":")[2].isdigit():
        raise InvalidArgument(f"--metrics-address {args.metrics_address!r} must be HOST:PORT")
    if args.firewall_check_interval <= 0:
        raise InvalidArgument("--firewall-check-interval must be positive")
    return DaemonConfig(
        socket=Path(args.socket),
        state_dir=Path(args.state_dir),
        log_format=args.log_format or ("console" if isatty else "json"),
        firewall=args.firewall,
        socket_group=args.socket_group,
        firewall_check_interval=args.firewall_check_interval,
        bridge=args.bridge,
        subnet=parse_subnet(args.subnet),
        mtu=args.mtu,
        icc=args.icc,
        metrics_address=args.metrics_address,
    )


def network(cfg: DaemonConfig, uplink_mtu: int) -> NetworkConfig:
    return NetworkConfig(
        name="default",
        bridge=cfg.bridge,
        subnet=cfg.subnet,
        gateway=next(cfg.subnet.hosts()),
        mtu=cfg.mtu or uplink_mtu,
        icc=cfg.icc,
    )
