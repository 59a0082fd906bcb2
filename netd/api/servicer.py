"""The gRPC edge: proto ⇄ model, NetdError → status code, deadlines, metrics.

Handlers are coroutines on grpcio's asyncio server. The service's calls
block (netlink, SQLite, firewall tools), so they run on a thread pool, except
a quick attach (see AttachContainer), which runs on the loop itself.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import grpc
import structlog

from netd import __version__, events, metrics, validate
from netd.api.convert import (
    EndpointListing,
    dns_to_proto,
    endpoint_to_proto,
    event_to_proto,
    link_to_proto,
    network_spec,
    network_to_proto,
)
from netd.errors import DeadlineExceeded, FailedPrecondition, InternalError, NetdError
from netd.model import NetworkConfig
from netd.service import Busy, Service
from netd.v1 import netd_pb2 as pb
from netd.v1 import netd_pb2_grpc as pb_grpc

log = structlog.get_logger("netd")


def status_code(error: NetdError) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, error.status, grpc.StatusCode.UNKNOWN)


def deadline_of(context: grpc.aio.ServicerContext) -> float | None:
    """The call's deadline on time.monotonic()'s clock, if the client set one."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def check_deadline(deadline: float | None, method: str) -> None:
    """Refuse to start work the caller has stopped waiting for (it queued
    behind other calls). Work that started runs to its end or its rollback."""
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceeded(f"{method}: the deadline passed before netd could start the call")


def answer(name: str, method: Callable, *args: Any, **kwargs: Any) -> tuple[Any, tuple[grpc.StatusCode, str] | None]:
    """method(*args, **kwargs) for the RPC `name`: (response, None), or (None,
    the status to abort with). Expected errors become their status; anything
    else is logged with its stack and reaches the client as INTERNAL without
    one. Busy passes through: the call has not happened yet."""
    started, code = time.perf_counter(), "OK"
    try:
        return method(*args, **kwargs), None
    except Busy:
        code = ""
        raise
    except NetdError as e:
        code = e.status
        if isinstance(e, InternalError):
            log.error("call_failed", method=name, error=str(e))
        return None, (status_code(e), str(e))
    except Exception as e:  # noqa: BLE001 - the edge: never leak a traceback
        code = "INTERNAL"
        log.exception("call_crashed", method=name)
        return None, (grpc.StatusCode.INTERNAL, f"internal error in {name}: {type(e).__name__}")
    finally:
        if code:
            metrics.observe_call(name, code, time.perf_counter() - started)


def on_the_pool(method: Callable, name: str = "") -> Callable:
    """A call served by a worker thread: the handler's coroutine waits for
    it (and is cancelled if the client goes away; the work is not)."""
    name = name or method.__name__

    @functools.wraps(method)
    async def handler(self: NetdServicer, request: object, context: grpc.aio.ServicerContext) -> object:
        deadline = deadline_of(context)

        def work() -> object:
            check_deadline(deadline, name)
            return method(self, request, context)

        response, error = await asyncio.get_running_loop().run_in_executor(
            self.pool, functools.partial(answer, name, work))
        if error:
            await context.abort(*error)
        return response

    return handler


class NetdServicer(pb_grpc.NetdServicer):
    def __init__(self, service: Service, pool: Executor) -> None:
        self._service = service
        self.pool = pool
        self._started = time.monotonic()
        self._listing = EndpointListing()

    async def AttachContainer(self, request: pb.AttachContainerRequest,
                              context: grpc.aio.ServicerContext) -> pb.AttachContainerResponse:
        """On the loop's own thread unless it publishes ports (which runs nft
        or iptables-restore and waits for it) or would wait for another call
        on its container id (a detach holding the id's lock waits ~24 ms for
        its veth to go): then on the pool. Served in turn on the loop, under
        many concurrent callers an attach costs less CPU than handed to a
        worker and back (two thread switches, and the workers mostly passing
        the GIL around)."""
        if not request.ports:
            try:
                response, error = answer("AttachContainer", self._attach, request, context, wait=False)
            except Busy:
                pass
            else:
                if error:
                    await context.abort(*error)
                return response
        return await self._attach_on_the_pool(request, context)

    def _attach(self, request: pb.AttachContainerRequest, context: object, wait: bool = True) -> pb.AttachContainerResponse:
        req = validate.attach_request(
            self._service.network(validate.network(request.network)),
            container_id_=request.container_id, pid_=request.pid, netns_path_=request.netns_path,
            ifname_=request.ifname, ip_address=request.ip_address, owner_=request.owner,
            ports_=[(p.protocol, p.host_ip, p.host_port, p.container_port, p.range) for p in request.ports],
            name_=request.name, aliases_=list(request.aliases),
        )
        endpoint = self._service.attach(req, wait=wait)
        proto = endpoint_to_proto(endpoint)
        self._listing.remember(endpoint, proto)
        return pb.AttachContainerResponse(endpoint=proto, dns=dns_to_proto(self._service.nets[endpoint.network]))

    _attach_on_the_pool = on_the_pool(_attach, "AttachContainer")  # wait=True: may wait for the id's lock

    @on_the_pool
    def DetachContainer(self, request: pb.DetachContainerRequest, context: object) -> pb.DetachContainerResponse:
        cid, network = validate.container_id(request.container_id), validate.network(request.network)
        detached = self._service.detach(cid, network)
        return pb.DetachContainerResponse(detached=detached > 0)

    def _networks(self) -> list[pb.NetworkStatus]:
        return [self._network(net) for net in self._service.networks]

    def _network(self, net: NetworkConfig) -> pb.NetworkStatus:
        used, free = self._service.pool_usage(net.name)
        return network_to_proto(net, len(self._service.list(net.name)), used, free)

    @on_the_pool
    def CreateNetwork(self, request: pb.CreateNetworkRequest, context: object) -> pb.CreateNetworkResponse:
        net = self._service.create_network(network_spec(request))
        return pb.CreateNetworkResponse(network=self._network(net))

    @on_the_pool
    def DeleteNetwork(self, request: pb.DeleteNetworkRequest, context: object) -> pb.DeleteNetworkResponse:
        return pb.DeleteNetworkResponse(detached=self._service.delete_network(validate.network(request.name),
                                                                             request.force))

    @on_the_pool
    def InspectNetwork(self, request: pb.InspectNetworkRequest, context: object) -> pb.InspectNetworkResponse:
        net = self._service.network(validate.network(request.name) or "")
        return pb.InspectNetworkResponse(network=self._network(net),
                                         endpoints=[endpoint_to_proto(e) for e in self._service.list(net.name)])

    async def WatchEvents(self, request: pb.WatchEventsRequest, context: grpc.aio.ServicerContext):  # noqa: ANN201
        """Events as they come; a watcher that falls CAPACITY events behind
        is told so (RESOURCE_EXHAUSTED) and must watch again."""
        unknown = set(request.kinds) - set(events.KINDS)
        if unknown:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"kinds: {', '.join(sorted(unknown))} not among {', '.join(events.KINDS)}")
        watcher = self._service.events.watch(events.Filter(request.network, request.container_id,
                                                           frozenset(request.kinds)))
        try:
            while True:
                event = await watcher.queue.get()
                if event is None:
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        f"this watcher fell {watcher.queue.maxsize} events behind: watch again")
                yield event_to_proto(event)
        finally:
            self._service.events.forget(watcher)

    @on_the_pool
    def GetStatus(self, request: pb.GetStatusRequest, context: object) -> pb.GetStatusResponse:
        return pb.GetStatusResponse(
            version=__version__, uptime_seconds=round(time.monotonic() - self._started, 3),
            firewall_driver=self._service.firewall.name, networks=self._networks(),
            problems=[str(p) for p in self._service.problems()], instance=self._service.mark.partition(":")[2],
        )

    @on_the_pool
    def ListNetworks(self, request: pb.ListNetworksRequest, context: object) -> pb.ListNetworksResponse:
        return pb.ListNetworksResponse(networks=self._networks())

    @on_the_pool
    def InspectEndpoint(self, request: pb.InspectEndpointRequest, context: object) -> pb.InspectEndpointResponse:
        found = self._service.inspect(validate.container_id(request.container_id), validate.network(request.network))
        view = found.container
        return pb.InspectEndpointResponse(
            endpoint=endpoint_to_proto(found.endpoint), host_link=link_to_proto(found.host_link),
            container_link=link_to_proto(view.link if view else None),
            container_addresses=[str(a) for a in view.addresses] if view else [],
            container_routes=[f"{r.dst} via {r.gateway}" if r.gateway else str(r.dst) for r in view.routes] if view else [],
        )

    @on_the_pool
    def CheckEndpoint(self, request: pb.CheckEndpointRequest, context: object) -> pb.CheckEndpointResponse:
        problems = self._service.check(validate.container_id(request.container_id), validate.network(request.network))
        return pb.CheckEndpointResponse(ok=not problems, problems=problems)

    @on_the_pool
    def ListNodes(self, request: pb.ListNodesRequest, context: object) -> pb.ListNodesResponse:
        agent = self._service.cluster
        if agent is None:
            raise FailedPrecondition("netd runs without a [cluster] in its config: there are no nodes")
        return pb.ListNodesResponse(nodes=[
            pb.Node(name=s.node.name, public_ip=str(s.node.public_ip), subnet=str(s.node.subnet),
                    backend=s.node.backend, lease_seconds=s.lease_seconds, reachable=s.reachable, reason=s.why,
                    this_host=s.node.name == agent.name)
            for s in agent.nodes()])

    @on_the_pool
    def ListEndpoints(self, request: pb.ListEndpointsRequest, context: object) -> pb.ListEndpointsResponse:
        network = validate.network(request.network)
        return self._listing.answer(self._service.list(), self._service.network(network).name if network else "")
