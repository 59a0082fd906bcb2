"""The gRPC edge on grpcio's server, with grpcio's real client over a Unix
socket and a service on fakes (no root): statuses, deadlines, gzip, limits,
health and reflection; and the ListEndpoints cache."""

import os
import threading
import time
from dataclasses import replace

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from netd import errors
from netd.api.convert import EndpointListing, endpoint_to_proto
from netd.api.server import MAX_MESSAGE_BYTES, Server
from netd.api.servicer import answer, status_code
from netd.service import Problem
from netd.store.memory import MemoryStore
from netd.v1 import netd_pb2 as pb
from netd.v1 import netd_pb2_grpc as pb_grpc
from tests.unit.test_service import make
from tests.unit.test_store import endpoint


@pytest.mark.parametrize("error,code", [
    (errors.InvalidArgument("x"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.AddressOutOfRange("x"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.ContainerNotFound("x"), grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyAttached("x"), grpc.StatusCode.ALREADY_EXISTS),
    (errors.AddressInUse("x"), grpc.StatusCode.ALREADY_EXISTS),
    (errors.PoolExhausted("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.BridgeFull("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.FailedPrecondition("x"), grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unavailable("x"), grpc.StatusCode.UNAVAILABLE),
    (errors.DeadlineExceeded("x"), grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.KernelError("x"), grpc.StatusCode.INTERNAL),
    (errors.FirewallError("x"), grpc.StatusCode.INTERNAL),
    (errors.StoreError("x"), grpc.StatusCode.INTERNAL),
])
def test_status_codes(error, code):
    assert status_code(error) == code


def raising(exc):
    def Method():
        raise exc
    return Method


def test_netd_error_message_reaches_the_client():
    assert answer("Method", raising(errors.ContainerNotFound("pid 7: no such process"))) == (
        None, (grpc.StatusCode.NOT_FOUND, "pid 7: no such process"))


def test_unexpected_error_is_internal_without_traceback():
    _, (code, details) = answer("Method", raising(ZeroDivisionError("secret detail")))
    assert code == grpc.StatusCode.INTERNAL
    assert "Traceback" not in details and "secret" not in details


@pytest.fixture
def served(tmp_path):
    """netd's real gRPC server on a service over fakes; a client channel to it."""
    service = make()
    path = tmp_path / "netd.sock"
    server = Server(service, path, workers=4)
    server.set_health([])
    server.start()
    channel = grpc.insecure_channel(f"unix:{path}")
    try:
        yield service, server, channel, path
    finally:
        channel.close()
        server.stop(1)


def test_attach_list_detach_and_statuses_through_grpcio(served):
    service, _, channel, path = served
    stub = pb_grpc.NetdStub(channel)
    assert oct(os.stat(path).st_mode & 0o777) == "0o660"
    endpoint = stub.AttachContainer(pb.AttachContainerRequest(container_id="c1", pid=100), timeout=5).endpoint
    assert endpoint.ip_address == "10.89.0.2/16"
    assert [e.container_id for e in stub.ListEndpoints(pb.ListEndpointsRequest(), timeout=5).endpoints] == ["c1"]
    with pytest.raises(grpc.RpcError) as info:
        stub.AttachContainer(pb.AttachContainerRequest(container_id="c1", pid=101), timeout=5)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS and "c1" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        stub.AttachContainer(pb.AttachContainerRequest(container_id="bad id", pid=101), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "container_id" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:  # ports go to the pool: the error still reaches the client
        stub.AttachContainer(pb.AttachContainerRequest(container_id="c2", pid=999, ports=[
            pb.PortMapping(host_port=8080, container_port=80)]), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert stub.DetachContainer(pb.DetachContainerRequest(container_id="c1"), timeout=5).detached
    assert not stub.DetachContainer(pb.DetachContainerRequest(container_id="c1"), timeout=5).detached


def test_an_attach_waiting_for_its_id_goes_to_the_pool_and_finishes(served):
    service, _, channel, _ = served
    stub = pb_grpc.NetdStub(channel)
    held, release = threading.Event(), threading.Event()

    def hold():
        with service._id_locks.hold("c1"):
            held.set()
            release.wait(5)

    threading.Thread(target=hold).start()
    held.wait(5)
    future = stub.AttachContainer.future(pb.AttachContainerRequest(container_id="c1", pid=100), timeout=10)
    # the loop is not blocked by the waiting attach: other calls go through
    assert stub.ListEndpoints(pb.ListEndpointsRequest(), timeout=5).endpoints == []
    release.set()
    assert future.result().endpoint.container_id == "c1"


def test_a_call_whose_deadline_passed_in_the_queue_is_not_started(served):
    service, server, channel, _ = served
    release = threading.Event()
    for _ in range(4):  # every worker of the pool busy
        server._pool.submit(release.wait, 5)
    detached = []
    service.detach = lambda *args, **kwargs: detached.append(args) or 0
    late = pb_grpc.NetdStub(channel).DetachContainer.future(pb.DetachContainerRequest(container_id="c9"), timeout=0.3)
    with pytest.raises(grpc.RpcError) as info:
        late.result()
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    release.set()  # the queued call reaches a worker now, and is not started
    time.sleep(0.3)
    assert detached == []


def test_gzip_compressed_requests_are_accepted(served):
    _, _, _, path = served
    with grpc.insecure_channel(f"unix:{path}", compression=grpc.Compression.Gzip) as channel:
        reply = pb_grpc.NetdStub(channel).AttachContainer(
            pb.AttachContainerRequest(container_id="gz", pid=100, owner="x" * 60), timeout=5)
    assert reply.endpoint.container_id == "gz"


def test_a_message_over_the_limit_is_refused(served):
    stub = pb_grpc.NetdStub(served[2])
    with pytest.raises(grpc.RpcError) as info:
        stub.ListEndpoints(pb.ListEndpointsRequest(network="n" * (MAX_MESSAGE_BYTES + 1)), timeout=5)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_health_check_and_watch_and_reflection(served):
    _, server, channel, _ = served
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest(service="netd.v1.Netd"), timeout=5).status == \
        health_pb2.HealthCheckResponse.SERVING
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    server.set_health([Problem("bridge netd0: down", "default")])
    assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    watch.cancel()
    assert health.Check(health_pb2.HealthCheckRequest(service="network/default"), timeout=5).status == \
        health_pb2.HealthCheckResponse.NOT_SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    names = {s.name for s in next(replies).list_services_response.service}
    assert {"netd.v1.Netd", "grpc.health.v1.Health"} <= names


def test_endpoint_listing_follows_the_store_and_reuses_unchanged_answers():
    store, listing = MemoryStore(), EndpointListing()

    def expected(network=""):
        return [endpoint_to_proto(e) for e in store.list(network or None)]

    assert list(listing.answer(store.list(), "").endpoints) == []
    for i in range(300):  # encodings longer than 127 bytes: two-byte lengths
        store.add(endpoint(f"c{i}", f"10.89.{i // 250}.{i % 250 + 2}"))
    store.add(replace(endpoint("o1", "10.90.0.2", network="other"), host_ifname="vndo1"))
    first = listing.answer(store.list(), "")
    assert list(first.endpoints) == expected() and len(first.endpoints) == 301
    assert listing.answer(store.list(), "") is first  # nothing changed: the same answer
    assert list(listing.answer(store.list(), "other").endpoints) == expected("other")
    store.mark_ready("default", "c7", 42)
    store.remove("default", "c8")
    changed = listing.answer(store.list(), "")
    assert changed is not first and list(changed.endpoints) == expected()
    assert "c8" not in {e.container_id for e in changed.endpoints} and len(changed.endpoints) == 300


def test_endpoint_listing_uses_encodings_remembered_at_attach():
    listing, e = EndpointListing(), endpoint()
    proto = endpoint_to_proto(e)
    proto.owner = "as remembered"  # tells the remembered encoding from a fresh one
    listing.remember(e, proto)
    assert listing.answer([e], "").endpoints[0].owner == "as remembered"
    assert listing.answer([endpoint()], "").endpoints[0].owner == ""  # an equal but new record is encoded again
