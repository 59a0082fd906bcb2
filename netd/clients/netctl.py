"""netctl: a small gRPC client for operators. It only talks to netd.

Exit codes: 0 success, 1 netd refused or failed the call (or `check` found
drift), 2 bad usage, 3 netd is not reachable (or, for `status`, not SERVING).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from netd.clients import DEFAULT_SOCKET, commands, oci_hook
from netd.clients.publish import parse_publish, show_port
from netd.v1 import netd_pb2 as pb
from netd.v1 import netd_pb2_grpc as pb_grpc

TIMEOUT = 30.0
COLUMNS = ("container_id", "network", "ip_address", "ip6_address", "name", "ifname", "host_ifname", "mac_address",
           "pid", "netns_path", "ports", "created_at")
NODE_COLUMNS = ("name", "public_ip", "subnet", "backend", "lease_seconds", "reachable", "reason", "this_host")


def publish_arg(text: str) -> pb.PortMapping:
    try:
        return parse_publish(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netctl", description="Talk to netd.")
    p.add_argument("--socket", default=os.environ.get("NETD_SOCKET", DEFAULT_SOCKET),
                   help="netd's socket (default $NETD_SOCKET or %(default)s)")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("-o", "--output", choices=["table", "json"], default="table")
    network = argparse.ArgumentParser(add_help=False)
    network.add_argument("-n", "--network", default="", help="netd network (default: the default one)")
    sub = p.add_subparsers(dest="command", required=True)
    attach = sub.add_parser("attach", parents=[output, network], help="attach a container")
    attach.add_argument("container_id")
    where = attach.add_mutually_exclusive_group(required=True)
    where.add_argument("--pid", type=int, default=0)
    where.add_argument("--netns", default="", help="netns path, e.g. /run/netns/NAME")
    attach.add_argument("--ip", default="", help="static address inside the subnet")
    attach.add_argument("--ifname", default="", help="interface name in the container (default eth0)")
    attach.add_argument("--name", default="", help="its DNS name on the network (default: the container id)")
    attach.add_argument("--alias", action="append", default=[], help="another DNS name; repeatable")
    attach.add_argument("-p", "--publish", type=publish_arg, action="append", default=[],
                        metavar="[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]",
                        help="publish a port (or a FIRST-LAST range) on the host; repeatable")
    detach = sub.add_parser("detach", parents=[output, network],
                            help="detach a container (from every network unless --network)")
    detach.add_argument("container_id")
    ls = sub.add_parser("ls", parents=[output, network], help="list endpoints")
    ls.add_argument("--watch", type=float, nargs="?", const=2.0, default=0, metavar="SECONDS",
                    help="redraw every SECONDS (default 2) until interrupted")
    inspect = sub.add_parser("inspect", parents=[output, network], help="one endpoint and what the kernel shows now")
    inspect.add_argument("container_id")
    check = sub.add_parser("check", parents=[output, network],
                           help="does the kernel still match the record? (exit 1 if not)")
    check.add_argument("container_id")
    sub.add_parser("networks", parents=[output], help="list networks: bridge, subnets, MTU, addresses used/free")
    commands.add_parsers(sub, output)
    sub.add_parser("nodes", parents=[output], help="the cluster's hosts: subnet, public IP, lease time left, reachable")
    sub.add_parser("status", parents=[output], help="is netd serving, and is anything it depends on broken? (exit 3 if so)")
    hook = sub.add_parser("oci-hook", help="OCI runtime hook: reads the container state JSON on stdin")
    hook.add_argument("action", choices=["attach", "detach"],
                      help="attach (createRuntime or prestart hook) or detach (poststop hook)")
    completion = sub.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=["bash"])
    return p


def to_dict(message: object) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def table(rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> str:
    # IPv6 columns only when some network is dual stack
    columns = tuple(c for c in columns if "6" not in c or any(r.get(c) for r in rows))
    header = [c.upper() for c in columns]
    cells = [[", ".join(map(show_port, r.get(c, []))) if c == "ports" else str(r.get(c, "")) for c in columns]
             for r in rows]
    widths = [max(len(x) for x in column) for column in zip(header, *cells)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in [header, *cells])


def emit(args: argparse.Namespace, data: object, text: str) -> None:
    print(json.dumps(data, indent=2) if args.output == "json" else text)


def describe(data: dict) -> str:
    """`inspect` for people: the record, then each end of the veth as the kernel shows it."""
    lines = [f"{k}: {v}" for k, v in data["endpoint"].items()]
    for side in ("host_link", "container_link"):
        link = data.get(side)
        if not link:
            lines.append(f"{side}: missing")
            continue
        lines.append(f"{side}: {link['name']} {'UP' if link['up'] else 'DOWN'}"
                     f"{' carrier' if link['carrier'] else ' no-carrier'} mtu {link['mtu']} mac {link['mac_address']} "
                     f"rx {link['rx_packets']} pkts / {link['rx_bytes']} B (dropped {link['rx_dropped']}) "
                     f"tx {link['tx_packets']} pkts / {link['tx_bytes']} B (dropped {link['tx_dropped']})")
    lines.append(f"container_addresses: {', '.join(data['container_addresses']) or 'none'}")
    lines.append(f"container_routes: {', '.join(data['container_routes']) or 'none'}")
    return "\n".join(lines)


def status(args: argparse.Namespace, channel: grpc.Channel, stub: pb_grpc.NetdStub) -> int:
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
    serving = health.status == health_pb2.HealthCheckResponse.SERVING
    data = {"status": health_pb2.HealthCheckResponse.ServingStatus.Name(health.status), "socket": args.socket,
            **to_dict(stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT))}
    lines = [f"{data['status']} on {args.socket}",
             f"version {data['version']}, instance {data['instance']}, up {data['uptime_seconds']:.0f}s, "
             f"firewall {data['firewall_driver']}"]
    for n in data["networks"]:
        v6 = f", subnet6 {n['subnet6']}" if n["subnet6"] else ""
        lines.append(f"network {n['name']}: bridge {n['bridge']}, subnet {n['subnet']}{v6}, gateway {n['gateway']}, "
                     f"mtu {n['mtu']}, {n['endpoints']} endpoints, {n['addresses_used']} addresses used, "
                     f"{n['addresses_free']} free")
    lines += [f"problem: {p}" for p in data["problems"]]
    emit(args, data, "\n".join(lines))
    return 0 if serving and not data["problems"] else 3


def _flag_on_sigint() -> list[int]:
    """Ctrl-C appends to the returned list instead of raising: a
    KeyboardInterrupt raised during a gRPC call can deadlock the channel's
    close (grpc/grpc#19973), leaving `ls --watch` hung."""
    flag: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: flag.append(signum))
    return flag


def run(args: argparse.Namespace, channel: grpc.Channel) -> int:
    stub = pb_grpc.NetdStub(channel)
    if args.command == "attach":
        reply = stub.AttachContainer(pb.AttachContainerRequest(
            container_id=args.container_id, pid=args.pid, netns_path=args.netns,
            ifname=args.ifname, ip_address=args.ip, owner="netctl", ports=args.publish, network=args.network,
            name=args.name, aliases=args.alias), timeout=TIMEOUT)
        endpoint = to_dict(reply.endpoint)
        emit(args, endpoint, table([endpoint]))
    elif args.command == "detach":
        reply = stub.DetachContainer(pb.DetachContainerRequest(container_id=args.container_id, network=args.network),
                                     timeout=TIMEOUT)
        emit(args, to_dict(reply), f"{args.container_id}: {'detached' if reply.detached else 'was not attached'}")
    elif args.command == "ls":
        interrupted = _flag_on_sigint() if args.watch else []
        while not interrupted:
            listed = stub.ListEndpoints(pb.ListEndpointsRequest(network=args.network), timeout=TIMEOUT).endpoints
            endpoints = [to_dict(e) for e in listed]
            if args.watch and args.output == "table" and sys.stdout.isatty():
                print("\033[H\033[2J", end="")
            emit(args, endpoints, table(endpoints))
            if not args.watch:
                break
            sys.stdout.flush()
            deadline = time.monotonic() + args.watch
            while not interrupted and time.monotonic() < deadline:
                time.sleep(0.05)
    elif args.command == "inspect":
        data = to_dict(stub.InspectEndpoint(
            pb.InspectEndpointRequest(container_id=args.container_id, network=args.network), timeout=TIMEOUT))
        emit(args, data, describe(data))
    elif args.command == "check":
        reply = stub.CheckEndpoint(pb.CheckEndpointRequest(container_id=args.container_id, network=args.network),
                                   timeout=TIMEOUT)
        emit(args, to_dict(reply), "ok" if reply.ok else "\n".join(reply.problems))
        return 0 if reply.ok else 1
    elif args.command == "networks":
        commands.list_networks(args, stub, emit, table, to_dict, TIMEOUT)
    elif args.command in ("network", "events"):
        return commands.run(args, stub, emit, table, to_dict, TIMEOUT)
    elif args.command == "nodes":
        nodes = [to_dict(n) for n in stub.ListNodes(pb.ListNodesRequest(), timeout=TIMEOUT).nodes]
        emit(args, nodes, table(nodes, NODE_COLUMNS))
    elif args.command == "status":
        return status(args, channel, stub)
    elif args.command == "oci-hook":
        oci_hook.run(args.action, stub)
    return 0


def bash_completion(p: argparse.ArgumentParser) -> str:
    """A bash completion script built from the parser: commands, then their flags."""
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    cases = "\n".join(
        f"        {name}) opts=\"{' '.join(o for a in cmd._actions for o in a.option_strings)}\" ;;"  # noqa: SLF001
        for name, cmd in sub.choices.items()
    )
    return f"""_netctl() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} cmd="" opts="" w
    for w in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case "$w" in {'|'.join(sub.choices)}) cmd=$w; break ;; esac
    done
    if [ -z "$cmd" ]; then
        COMPREPLY=($(compgen -W "{' '.join(sub.choices)} --socket" -- "$cur")); return
    fi
    case "$cmd" in
{cases}
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
complete -F _netctl netctl
"""


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command == "completion":
        print(bash_completion(p), end="")
        return 0
    try:
        with grpc.insecure_channel(f"unix:{args.socket}") as channel:
            return run(args, channel)
    except KeyboardInterrupt:
        return 130
    except grpc.RpcError as e:
        code = e.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            print(f"netctl: netd is not reachable at {args.socket}: {e.details()}", file=sys.stderr)
            return 3
        print(f"netctl: {code.name}: {e.details()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
