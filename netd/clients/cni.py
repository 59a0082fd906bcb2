"""netd-cni: a CNI plugin (spec 1.0/1.1) that forwards to netd over gRPC.

Containerd, Podman and anything else that speaks CNI exec this with the
CNI_* environment and the network config on stdin; it answers with the spec's
result or error JSON on stdout. The config names netd's socket:

    {"cniVersion": "1.0.0", "name": "netd", "type": "netd-cni", "socket": "/run/netd/netd.sock"}

`"network": "NAME"` picks one of netd's networks (default: the default one);
with `"subnet": "CIDR"` too (and optionally `"subnet6"`, `"internal"`), netd
creates that network on the first ADD if it does not have it. With
`"capabilities": {"aliases": true}`, the runtime's `runtimeConfig.aliases`
for the network become the container's DNS aliases.
A static address can come in CNI_ARGS as IP=10.89.0.9. With
`"capabilities": {"portMappings": true}` in the config, the runtime's
`runtimeConfig.portMappings` (e.g. Podman's `-p`) are published by netd.
"""

from __future__ import annotations

import json
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from netd.clients import DEFAULT_SOCKET
from netd.v1 import netd_pb2 as pb
from netd.v1 import netd_pb2_grpc as pb_grpc

SUPPORTED = ["0.4.0", "1.0.0", "1.1.0"]
TIMEOUT = 60.0
CALL = {"timeout": TIMEOUT}
# A call made while netd restarts waits this long for it, then is TRY_AGAIN_LATER.
RESTART_WAIT = 10.0
# CNI error codes (spec section "Error"); 100 and up are this plugin's own.
INCOMPATIBLE_VERSION, UNKNOWN_CONTAINER, INVALID_ENV, DECODE_FAILED, INVALID_CONFIG = 1, 3, 4, 6, 7
TRY_AGAIN_LATER, PLUGIN_NOT_AVAILABLE, NETD_REFUSED, CHECK_FAILED = 11, 50, 100, 101
CODES = {
    grpc.StatusCode.INVALID_ARGUMENT: INVALID_ENV,
    grpc.StatusCode.NOT_FOUND: UNKNOWN_CONTAINER,
    grpc.StatusCode.UNAVAILABLE: TRY_AGAIN_LATER,
}


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def cni_args(text: str) -> dict[str, str]:
    """CNI_ARGS: 'K1=V1;K2=V2'."""
    return dict(pair.split("=", 1) for pair in text.split(";") if "=" in pair)


def require(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise CniError(INVALID_ENV, f"{name} is required")
    return value


def add_result(version: str, endpoint: pb.Endpoint, netns: str, dns: pb.DnsConfig | None = None) -> dict:
    ips = [{"address": endpoint.ip_address, "gateway": endpoint.gateway, "interface": 1}]
    routes = [{"dst": "0.0.0.0/0", "gw": endpoint.gateway}]
    if endpoint.ip6_address:
        ips.append({"address": endpoint.ip6_address, "gateway": endpoint.gateway6, "interface": 1})
        routes.append({"dst": "::/0", "gw": endpoint.gateway6})
    if version == "0.4.0":
        for ip in ips:
            ip["version"] = "6" if ":" in ip["address"] else "4"
    return {
        "cniVersion": version,
        "interfaces": [{"name": endpoint.host_ifname},
                       {"name": endpoint.ifname, "mac": endpoint.mac_address, "sandbox": netns}],
        "ips": ips,
        "routes": routes,
        "dns": {"nameservers": list(dns.nameservers), "search": list(dns.search)} if dns and dns.nameservers else {},
    }


def port_mappings(conf: dict) -> list[pb.PortMapping]:
    """The portMappings capability: [{hostPort, containerPort, protocol, hostIP}]."""
    mappings = (conf.get("runtimeConfig") or {}).get("portMappings") or []
    try:
        return [pb.PortMapping(protocol=m.get("protocol", "tcp"), host_ip=m.get("hostIP", ""),
                               host_port=int(m["hostPort"]), container_port=int(m["containerPort"]))
                for m in mappings]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CniError(INVALID_CONFIG, "runtimeConfig.portMappings is malformed", str(e)) from None


def aliases(conf: dict) -> list[str]:
    """The aliases capability: runtimeConfig.aliases = {NETWORK: [names]} (Podman's)."""
    by_network = (conf.get("runtimeConfig") or {}).get("aliases") or {}
    found = by_network.get(conf.get("network") or conf.get("name", ""), []) if isinstance(by_network, dict) else []
    return [a for a in found if isinstance(a, str)]


def create_network(stub: pb_grpc.NetdStub, conf: dict) -> bool:
    """A network the conflist names with its subnet, which netd does not
    have yet: create it (as Podman creates networks on first use). Did it?"""
    name = conf.get("network", "")
    if not name or not conf.get("subnet"):
        return False
    try:
        stub.InspectNetwork(pb.InspectNetworkRequest(name=name), **CALL)
        return False  # it exists: the attach's NOT_FOUND was about something else
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.NOT_FOUND:
            raise
    try:
        stub.CreateNetwork(pb.CreateNetworkRequest(
            name=name, subnet=str(conf["subnet"]), subnet6=str(conf.get("subnet6", "")),
            internal=bool(conf.get("internal", False)), labels={"created-by": f"cni:{conf.get('name', '')}"}), **CALL)
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.ALREADY_EXISTS:  # another ADD was first
            raise
    return True


def owner_of(conf: dict) -> str:
    """Endpoints this CNI network made are tagged so GC never touches others'."""
    return f"cni:{conf.get('name', '')}"[:64]


def run(command: str, conf: dict, channel: grpc.Channel) -> dict | None:
    stub = pb_grpc.NetdStub(channel)
    version, network = conf["cniVersion"], conf.get("network", "")
    if command == "ADD":
        netns, ifname = require("CNI_NETNS"), require("CNI_IFNAME")
        request = pb.AttachContainerRequest(
            container_id=require("CNI_CONTAINERID"), netns_path=netns, ifname=ifname, owner=owner_of(conf),
            ip_address=cni_args(os.environ.get("CNI_ARGS", "")).get("IP", ""), ports=port_mappings(conf),
            network=network, aliases=aliases(conf))
        try:
            reply = stub.AttachContainer(request, **CALL)
        except grpc.RpcError as e:
            if not (e.code() == grpc.StatusCode.NOT_FOUND and create_network(stub, conf)):
                raise
            reply = stub.AttachContainer(request, **CALL)
        return add_result(version, reply.endpoint, netns, reply.dns)
    if command == "DEL":  # idempotent, and needs no netns (the container may be long gone)
        container_id = require("CNI_CONTAINERID")
        if network:
            networks = [network]
        else:
            # Only what this CNI network attached: the container may be on
            # other netd networks through other conflists.
            listed = stub.ListEndpoints(pb.ListEndpointsRequest(), **CALL).endpoints
            networks = [e.network for e in listed if e.container_id == container_id and e.owner == owner_of(conf)]
        for name in networks:
            stub.DetachContainer(pb.DetachContainerRequest(container_id=container_id, network=name), **CALL)
        return None
    if command == "CHECK":
        reply = stub.CheckEndpoint(pb.CheckEndpointRequest(container_id=require("CNI_CONTAINERID"), network=network),
                                   **CALL)
        if not reply.ok:
            raise CniError(CHECK_FAILED, "the kernel no longer matches netd's record", "; ".join(reply.problems))
        return None
    if command == "GC":
        valid = {a.get("containerID") for a in conf.get("cni.dev/valid-attachments") or []}
        listed = stub.ListEndpoints(pb.ListEndpointsRequest(network=network), **CALL).endpoints
        for endpoint in listed:
            if endpoint.owner == owner_of(conf) and endpoint.container_id not in valid:
                stub.DetachContainer(pb.DetachContainerRequest(container_id=endpoint.container_id,
                                                               network=endpoint.network), **CALL)
        return None
    if command == "STATUS":
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
        status = stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)
        if health.status != health_pb2.HealthCheckResponse.SERVING:
            raise CniError(PLUGIN_NOT_AVAILABLE, "netd is not serving")
        if not all(n.addresses_free for n in status.networks):
            raise CniError(PLUGIN_NOT_AVAILABLE, "netd's address pool is exhausted")
        return None
    raise CniError(INVALID_ENV, f"CNI_COMMAND {command!r} is not supported (ADD, DEL, CHECK, GC, STATUS, VERSION)")


def wait_until_serving(channel: grpc.Channel, socket_path: str) -> None:
    try:
        grpc.channel_ready_future(channel).result(timeout=RESTART_WAIT)
    except grpc.FutureTimeoutError:
        raise CniError(TRY_AGAIN_LATER, f"netd is not reachable at {socket_path}",
                       f"waited {RESTART_WAIT:.0f} s") from None


def main() -> int:
    command = os.environ.get("CNI_COMMAND", "")
    version = "1.1.0"
    try:
        try:
            raw = sys.stdin.read()
            conf = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            raise CniError(DECODE_FAILED, "failed to decode the network config", str(e)) from None
        version = conf.get("cniVersion", version)
        if command == "VERSION":
            print(json.dumps({"cniVersion": version, "supportedVersions": SUPPORTED}))
            return 0
        if version not in SUPPORTED:
            raise CniError(INCOMPATIBLE_VERSION, f"cniVersion {version} is not supported", ", ".join(SUPPORTED))
        if not isinstance(conf.get("socket", ""), str):
            raise CniError(INVALID_CONFIG, "socket must be a path")
        if not isinstance(conf.get("network", ""), str):
            raise CniError(INVALID_CONFIG, "network must be the name of a netd network")
        conf["cniVersion"] = version
        socket_path = conf.get("socket") or os.environ.get("NETD_SOCKET", DEFAULT_SOCKET)
        with grpc.insecure_channel(f"unix:{socket_path}") as channel:
            try:
                if command != "STATUS":
                    wait_until_serving(channel, socket_path)
                result = run(command, conf, channel)
            except grpc.RpcError as e:
                unreachable = command == "STATUS" and e.code() == grpc.StatusCode.UNAVAILABLE
                code = PLUGIN_NOT_AVAILABLE if unreachable else CODES.get(e.code(), NETD_REFUSED)
                raise CniError(code, e.details() or e.code().name, f"netd at {socket_path}: {e.code().name}") from None
    except CniError as e:
        print(json.dumps({"cniVersion": version, "code": e.code, "msg": e.msg, "details": e.details}))
        return 1
    if result is not None:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
