"""netd's gRPC API on grpcio's asyncio server: Netd, health, reflection, and
the limits a local root daemon needs against broken or hostile clients.

The server's loop runs on a thread of its own; the service's blocking calls
run on a pool (see servicer.py). Streaming calls (health Watch, reflection)
are coroutines: they hold no thread however many a client opens.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from netd.api.servicer import NetdServicer
from netd.errors import FailedPrecondition
from netd.service import Problem, Service
from netd.v1 import netd_pb2 as pb
from netd.v1 import netd_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Netd"].full_name
HEALTH_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
WORKERS = 16

# Every request netd takes is small (an attach with 1024 ports is ~20 KB).
MAX_MESSAGE_BYTES = 64 * 1024
# Calls at once over all connections; past it RESOURCE_EXHAUSTED. A call
# whose client never reads its answer counts until the connection closes,
# and holds the answer (up to ~150 KB: ListEndpoints of 1000 endpoints).
MAX_CONCURRENT_CALLS = 1024
# Calls at once on one connection (grpc-go's default is 100): a client
# cannot hold more; the rest wait in the client.
MAX_STREAMS_PER_CONNECTION = 16
# Open connections; more are closed at once. Each idle one costs ~15 KB
# (2000 idle ones: +27 MiB), and is closed after IDLE_MS without a call.
MAX_CONNECTIONS = 4096
IDLE_MS = 300_000
LIMITS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
    ("grpc.http.overload_protection", 0),
    ("grpc.max_allowed_incoming_connections", MAX_CONNECTIONS),
    ("grpc.max_connection_idle_ms", IDLE_MS),
    # A connection that never finishes its HTTP/2 handshake is closed.
    ("grpc.server_handshake_timeout_ms", 10_000),
    ("grpc.http2.settings_timeout", 10_000),
    # Keepalive enforcement: a client may ping at most every 10 s, with
    # calls in flight or not; more pings get the connection closed.
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 2),
    # netd's own keepalive finds dead peers of long streams (health Watch).
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.max_metadata_size", 16 * 1024),
    ("grpc.http2.bdp_probe", 0),
]


def bind_socket(server: grpc.aio.Server, path: Path) -> None:
    """The Unix socket, created with no access for others (grpcio replaces a
    socket file left at the path), then 0660."""
    old_umask = os.umask(0o177)
    try:
        if not server.add_insecure_port(f"unix:{path}"):
            raise FailedPrecondition(f"failed to listen on socket {path}")
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o660)


class Server:
    """Netd, grpc.health.v1 and reflection on a loop thread of their own."""

    def __init__(self, service: Service, socket_path: Path, workers: int = WORKERS) -> None:
        self._path = socket_path
        self._networks = service.networks
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="grpc-worker")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="grpc-loop", daemon=True)
        self._thread.start()
        self._server, self._health = self._run(self._make(service))

    def _run(self, coroutine):  # noqa: ANN001, ANN202 - any coroutine, its result
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _make(self, service: Service) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
        server = grpc.aio.server(migration_thread_pool=self._pool, options=LIMITS,
                                 maximum_concurrent_rpcs=MAX_CONCURRENT_CALLS)
        pb_grpc.add_NetdServicer_to_server(NetdServicer(service, self._pool), server)
        checker = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(checker, server)
        reflection.enable_server_reflection((SERVICE_NAME, HEALTH_NAME, reflection.SERVICE_NAME), server)
        bind_socket(server, self._path)
        return server, checker

    def start(self) -> None:
        self._run(self._server.start())

    def set_health(self, problems: list[Problem]) -> None:
        """grpc.health.v1's answers: the whole server and Netd are SERVING
        while nothing netd depends on is broken; `network/NAME` while
        nothing its network depends on is."""
        broken = {p.network for p in problems}
        statuses = {name: not problems for name in (SERVICE_NAME, "")}
        statuses.update({f"network/{net.name}": not broken & {"", net.name} for net in self._networks})
        for name, serving in statuses.items():
            status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
            self._run(self._health.set(name, status))

    def stop(self, grace: float) -> None:
        """New calls are refused; in-flight ones have `grace` seconds to finish."""
        self._run(self._server.stop(grace))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._pool.shutdown(wait=True)
