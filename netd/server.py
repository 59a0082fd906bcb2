"""The gRPC edge: proto ⇄ model, NetdError → status code, health, reflection."""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from netd import __version__, metrics, rpc, validate
from netd.errors import InternalError, NetdError, Unavailable
from netd.model import Endpoint, PortMapping
from netd.rtnl import IFF_LOWER_UP, IFF_UP
from netd.service import Busy, Service
from netd.v1 import netd_pb2 as pb
from netd.v1 import netd_pb2_grpc as pb_grpc

log = structlog.get_logger("netd")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Netd"].full_name
MAX_MESSAGE_BYTES = 64 * 1024


def status_code(error: NetdError) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, error.status, grpc.StatusCode.UNKNOWN)


def port_to_proto(m: PortMapping) -> pb.PortMapping:
    return pb.PortMapping(protocol=m.protocol, host_ip=str(m.host_ip or ""), host_port=m.host_port,
                          container_port=m.container_port, range=m.count)


def endpoint_to_proto(e: Endpoint) -> pb.Endpoint:
    return pb.Endpoint(
        container_id=e.container_id, network=e.network, ifname=e.ifname,
        host_ifname=e.host_ifname, ip_address=str(e.address), gateway=str(e.gateway),
        mac_address=e.mac_address, pid=e.pid, netns_path=e.netns_path, created_at=e.created_at, owner=e.owner,
        ports=[port_to_proto(m) for m in e.ports], ip6_address=str(e.address6 or ""), gateway6=str(e.gateway6 or ""),
    )


def _answer(method: Callable, servicer: NetdServicer, request: object, context: grpc.ServicerContext,
            **options: object) -> tuple[object, tuple[grpc.StatusCode, str] | None]:
    """(response, None), or (None, the status to abort with): expected errors
    become their status; anything else is logged with its stack and reaches
    the client as INTERNAL without one. Busy passes through: the call has
    not happened yet."""
    started, code = time.perf_counter(), "OK"
    try:
        if not servicer.ready.is_set() and method.__name__ != "GetStatus":
            raise Unavailable("netd is starting: reconciling its state with the kernel")
        return method(servicer, request, context, **options), None
    except Busy:
        code = ""
        raise
    except NetdError as e:
        code = e.status
        if isinstance(e, InternalError):
            log.error("call_failed", method=method.__name__, error=str(e))
        return None, (status_code(e), str(e))
    except Exception as e:  # noqa: BLE001 - the edge: never leak a traceback
        code = "INTERNAL"
        log.exception("call_crashed", method=method.__name__)
        return None, (grpc.StatusCode.INTERNAL, f"internal error in {method.__name__}: {type(e).__name__}")
    finally:
        if code:
            metrics.observe_call(method.__name__, code, time.perf_counter() - started)


def at_the_edge(method: Callable) -> Callable:
    """A call served by a worker thread of the pool."""

    @functools.wraps(method)
    def wrapper(self: NetdServicer, request: object, context: grpc.ServicerContext) -> object:
        response, error = _answer(method, self, request, context)
        if error:
            context.abort(*error)
        return response

    return wrapper


def _without_waiting(method: Callable, servicer: NetdServicer, request: object,
                     context: grpc.ServicerContext) -> tuple[object, tuple[grpc.StatusCode, str] | None] | None:
    """_answer's answer, or None if the call would wait for another one."""
    try:
        return _answer(method, servicer, request, context, wait=False)
    except Busy:
        return None


def quick_unless(slow: Callable[[Any], bool]) -> Callable:
    """A call the connection's own thread serves (rpc.Server.quick), unless
    slow(request) says it may take long, or the method, called with
    wait=False, raises Busy because it would wait for another call (a detach
    holding the container id's lock waits ~24 ms for its veth to go): then a
    worker thread does, and the connection serves other calls meanwhile. A
    worker costs two hand-overs between threads per call, and under many
    concurrent callers on one connection the workers mostly pass Python's
    GIL around: served in turn, attaches cost ~20% less CPU each."""

    def decorate(method: Callable) -> Callable:
        wrapper = at_the_edge(method)

        def quick(self: NetdServicer, request: object, context: rpc.Context) -> object:
            answer = None if slow(request) else _without_waiting(method, self, request, context)
            if answer is None:
                raise rpc.Slow
            response, error = answer
            if error:
                context.abort(*error)
            return response

        wrapper.quick = quick
        return wrapper

    return decorate


def link_to_proto(link: object) -> pb.LinkState | None:
    if link is None:
        return None
    rx_packets, tx_packets, rx_bytes, tx_bytes, _, _, rx_dropped, tx_dropped = link.stats
    return pb.LinkState(
        name=link.name, up=bool(link.flags & IFF_UP), carrier=bool(link.flags & IFF_LOWER_UP), mtu=link.mtu,
        mac_address=link.mac, rx_packets=rx_packets, tx_packets=tx_packets, rx_bytes=rx_bytes,
        tx_bytes=tx_bytes, rx_dropped=rx_dropped, tx_dropped=tx_dropped,
    )


class NetdServicer(pb_grpc.NetdServicer):
    def __init__(self, service: Service) -> None:
        self._service = service
        self._started = time.monotonic()
        # Set once start-up reconcile is done; until then calls get UNAVAILABLE.
        self.ready = threading.Event()
        self._listing = EndpointListing()

    def _caller(self, context: rpc.Context) -> str:
        """Who made this call, for the log: the connection's SO_PEERCRED."""
        return str(context.caller)

    # Publishing ports runs nft or iptables-restore, and waits for them.
    @quick_unless(slow=lambda request: len(request.ports) > 0)
    def AttachContainer(self, request: pb.AttachContainerRequest, context: grpc.ServicerContext,
                        wait: bool = True) -> pb.AttachContainerResponse:
        req = validate.attach_request(
            self._service.network(validate.network(request.network)),
            container_id_=request.container_id, pid_=request.pid, netns_path_=request.netns_path,
            ifname_=request.ifname, ip_address=request.ip_address, owner_=request.owner,
            ports_=[(p.protocol, p.host_ip, p.host_port, p.container_port, p.range) for p in request.ports],
        )
        endpoint = self._service.attach(req, caller=self._caller(context), wait=wait)
        proto = endpoint_to_proto(endpoint)
        self._listing.remember(endpoint, proto)
        return pb.AttachContainerResponse(endpoint=proto)

    @at_the_edge
    def DetachContainer(self, request: pb.DetachContainerRequest, context: grpc.ServicerContext) -> pb.DetachContainerResponse:
        cid, network = validate.container_id(request.container_id), validate.network(request.network)
        detached = self._service.detach(cid, network, caller=self._caller(context))
        return pb.DetachContainerResponse(detached=detached > 0)

    def _networks(self) -> list[pb.NetworkStatus]:
        statuses = []
        for net in self._service.networks:
            used, free = self._service.pool_usage(net.name)
            statuses.append(pb.NetworkStatus(
                name=net.name, bridge=net.bridge, subnet=str(net.subnet), gateway=str(net.gateway), mtu=net.mtu,
                endpoints=len(self._service.list(net.name)), addresses_used=used, addresses_free=free,
                subnet6=str(net.subnet6 or ""), gateway6=str(net.gateway6 or ""), icc=net.icc,
                masquerade=net.masquerade, masquerade6=net.masquerade6))
        return statuses

    @at_the_edge
    def GetStatus(self, request: pb.GetStatusRequest, context: grpc.ServicerContext) -> pb.GetStatusResponse:
        return pb.GetStatusResponse(
            version=__version__, uptime_seconds=round(time.monotonic() - self._started, 3),
            firewall_driver=self._service.firewall.name, networks=self._networks(),
        )

    @at_the_edge
    def ListNetworks(self, request: pb.ListNetworksRequest, context: grpc.ServicerContext) -> pb.ListNetworksResponse:
        return pb.ListNetworksResponse(networks=self._networks())

    @at_the_edge
    def InspectEndpoint(self, request: pb.InspectEndpointRequest, context: grpc.ServicerContext) -> pb.InspectEndpointResponse:
        found = self._service.inspect(validate.container_id(request.container_id), validate.network(request.network))
        view = found.container
        return pb.InspectEndpointResponse(
            endpoint=endpoint_to_proto(found.endpoint), host_link=link_to_proto(found.host_link),
            container_link=link_to_proto(view.link if view else None),
            container_addresses=[str(a) for a in view.addresses] if view else [],
            container_routes=[f"{r.dst} via {r.gateway}" if r.gateway else str(r.dst) for r in view.routes] if view else [],
        )

    @at_the_edge
    def CheckEndpoint(self, request: pb.CheckEndpointRequest, context: grpc.ServicerContext) -> pb.CheckEndpointResponse:
        problems = self._service.check(validate.container_id(request.container_id), validate.network(request.network))
        return pb.CheckEndpointResponse(ok=not problems, problems=problems)

    @at_the_edge
    def ListEndpoints(self, request: pb.ListEndpointsRequest, context: grpc.ServicerContext) -> pb.ListEndpointsResponse:
        network = validate.network(request.network)
        return self._listing.answer(self._service.list(), self._service.network(network).name if network else "")


class EndpointListing:
    """ListEndpoints answers without rebuilding 1000 messages per call (4 ms).

    The store hands out the same frozen Endpoint until it changes, so identity
    says whether an encoded endpoint, or a whole answer, is still current. A
    new answer is parsed from the endpoints' cached encodings joined (a
    repeated field is its elements' encodings one after another).
    """

    def __init__(self) -> None:
        self._encoded: dict[tuple[str, str], tuple[Endpoint, bytes]] = {}
        self._answers: dict[str, tuple[list[Endpoint], pb.ListEndpointsResponse]] = {}

    def remember(self, endpoint: Endpoint, proto: pb.Endpoint) -> None:
        """Encode a new endpoint now, while its proto is at hand (the first
        listing after 1000 attaches would otherwise encode 1000: ~17 ms)."""
        self._encoded[endpoint.key] = (endpoint, _as_list_element(proto))

    def answer(self, endpoints: list[Endpoint], network: str) -> pb.ListEndpointsResponse:
        """The response listing `endpoints` (all of them), or those of `network`."""
        listed = [e for e in endpoints if e.network == network] if network else endpoints
        cached = self._answers.get(network)
        if cached and len(cached[0]) == len(listed) and all(a is b for a, b in zip(cached[0], listed)):
            return cached[1]
        encoded, fresh = self._encoded, {}
        for e in endpoints:
            key = e.key
            hit = encoded.get(key)
            fresh[key] = hit if hit is not None and hit[0] is e else (e, _as_list_element(endpoint_to_proto(e)))
        self._encoded = fresh
        response = pb.ListEndpointsResponse.FromString(b"".join([fresh[e.key][1] for e in listed]))
        self._answers[network] = (listed, response)
        return response


def _as_list_element(endpoint: pb.Endpoint) -> bytes:
    """The endpoint as an element of ListEndpointsResponse.endpoints (field 1, length-delimited)."""
    body = endpoint.SerializeToString()
    return b"\x0a" + _varint(len(body)) + body


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class Server:
    """netd's gRPC API (Netd, health, reflection) on rpc.Server, serving
    the connections the gate accepts."""

    def __init__(self, service: Service, workers: int = 16) -> None:
        self._rpc = rpc.Server(workers, MAX_MESSAGE_BYTES)
        servicer = NetdServicer(service)
        self.ready = servicer.ready
        pb_grpc.add_NetdServicer_to_server(servicer, self._rpc)
        for name in pb.DESCRIPTOR.services_by_name["Netd"].methods_by_name:
            quick = getattr(getattr(NetdServicer, name), "quick", None)
            if quick:
                self._rpc.quick[f"/{SERVICE_NAME}/{name}"] = functools.partial(quick, servicer)
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._rpc)
        self.set_serving(False)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self._rpc,
        )

    def serve_connection(self, sock: socket.socket, caller: object) -> None:
        self._rpc.serve_connection(sock, caller)

    def set_serving(self, serving: bool) -> None:
        """grpc.health.v1's answer."""
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in (SERVICE_NAME, ""):
            self._health.set(name, status)

    def stop(self, grace: float) -> None:
        """New calls are refused; in-flight ones have `grace` seconds to finish."""
        self._rpc.stop(grace)
