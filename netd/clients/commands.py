"""netctl's `network` and `events` commands (the rest is in netctl.py)."""

from __future__ import annotations

import argparse
import json
import signal
from collections.abc import Callable

import grpc

from netd.v1 import netd_pb2 as pb
from netd.v1 import netd_pb2_grpc as pb_grpc

NETWORK_COLUMNS = ("name", "source", "bridge", "subnet", "gateway", "subnet6", "gateway6", "mtu", "icc", "internal",
                   "dns", "endpoints", "addresses_used", "addresses_free")
# netd.events.KINDS (clients import only generated code; a unit test keeps the two equal)
EVENT_KINDS = ("attached", "detached", "released", "repaired", "network_created", "network_deleted")


def label_arg(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: use KEY=VALUE")
    return key, value


def add_parsers(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    network = sub.add_parser("network", help="create, remove, list and inspect networks")
    actions = network.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", parents=[output], help="create a network (kept across restarts)")
    create.add_argument("name")
    create.add_argument("--subnet", default="", help="IPv4 CIDR (default: the next free /24 of the address pools)")
    create.add_argument("--subnet6", default="", help="IPv6 CIDR: dual stack")
    create.add_argument("--bridge", default="", help="bridge name (default netd-NAME)")
    create.add_argument("--gateway", default="", help="gateway address (default: the subnet's first)")
    create.add_argument("--mtu", type=int, default=0, help="MTU (default: the uplink's)")
    create.add_argument("--no-icc", dest="icc", action="store_false", help="containers may not talk to each other")
    create.add_argument("--no-masquerade", dest="masquerade", action="store_false", help="no NAT to the outside")
    create.add_argument("--internal", action="store_true", help="no way out of the network at all")
    create.add_argument("--no-dns", dest="dns", action="store_false", help="no DNS on the gateway")
    create.add_argument("--label", type=label_arg, action="append", default=[], metavar="KEY=VALUE")
    remove = actions.add_parser("rm", parents=[output], help="delete a network netctl created")
    remove.add_argument("name")
    remove.add_argument("-f", "--force", action="store_true", help="detach its endpoints first")
    actions.add_parser("ls", parents=[output], help="list networks")
    inspect = actions.add_parser("inspect", parents=[output], help="one network and its endpoints")
    inspect.add_argument("name")
    events = sub.add_parser("events", parents=[output], help="print what happens as it happens (like docker events)")
    events.add_argument("-n", "--network", default="")
    events.add_argument("--container", default="", help="only this container id")
    events.add_argument("--kind", action="append", default=[], choices=EVENT_KINDS)


def run(args: argparse.Namespace, stub: pb_grpc.NetdStub, emit: Callable, table: Callable, to_dict: Callable,
        timeout: float) -> int:
    if args.command == "events":
        return watch(args, stub, to_dict)
    if args.action == "create":
        reply = stub.CreateNetwork(pb.CreateNetworkRequest(
            name=args.name, subnet=args.subnet, subnet6=args.subnet6, bridge=args.bridge, gateway=args.gateway,
            mtu=args.mtu, icc=args.icc, masquerade=args.masquerade, internal=args.internal, dns=args.dns,
            labels=dict(args.label)), timeout=timeout)
        network = to_dict(reply.network)
        emit(args, network, table([network], NETWORK_COLUMNS))
    elif args.action == "rm":
        reply = stub.DeleteNetwork(pb.DeleteNetworkRequest(name=args.name, force=args.force), timeout=timeout)
        emit(args, to_dict(reply), f"{args.name}: deleted" + (f", {reply.detached} endpoints detached"
                                                                if reply.detached else ""))
    elif args.action == "ls":
        list_networks(args, stub, emit, table, to_dict, timeout)
    else:
        data = to_dict(stub.InspectNetwork(pb.InspectNetworkRequest(name=args.name), timeout=timeout))
        text = "\n".join([*(f"{k}: {v}" for k, v in data["network"].items()),
                          f"endpoints: {', '.join(e['container_id'] for e in data['endpoints']) or 'none'}"])
        emit(args, data, text)
    return 0


def list_networks(args: argparse.Namespace, stub: pb_grpc.NetdStub, emit: Callable, table: Callable,
                  to_dict: Callable, timeout: float) -> None:
    """`network ls`, and `networks`, its older name."""
    networks = [to_dict(n) for n in stub.ListNetworks(pb.ListNetworksRequest(), timeout=timeout).networks]
    emit(args, networks, table(networks, NETWORK_COLUMNS))


def watch(args: argparse.Namespace, stub: pb_grpc.NetdStub, to_dict: Callable) -> int:
    """One line per event until interrupted (or netd ends the stream)."""
    stream = stub.WatchEvents(pb.WatchEventsRequest(network=args.network, container_id=args.container,
                                                    kinds=args.kind))
    signal.signal(signal.SIGINT, lambda *_: stream.cancel())
    try:
        for event in stream:
            if args.output == "json":
                print(json.dumps(to_dict(event)), flush=True)
            else:
                fields = " ".join(f"{k}={v}" for k, v in (("network", event.network),
                                                           ("container", event.container_id),
                                                           ("address", event.ip_address), ("owner", event.owner),
                                                           ("detail", event.detail)) if v)
                print(f"{event.time} {event.kind} {fields}", flush=True)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.CANCELLED:
            return 0
        raise
    return 0
