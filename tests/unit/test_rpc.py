"""netd.rpc behind the gate, called by grpcio's own client over a Unix socket."""

import os
import threading
import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from netd import rpc
from netd.gate import Gate

SERVICE = "test.Echo"


def crash(request, context):
    raise RuntimeError("secret detail")


def slow(request, context):
    time.sleep(float(request or b"0"))
    return threading.current_thread().name.encode()


def declined(request, context):
    raise rpc.Slow


@pytest.fixture
def served(tmp_path):
    server = rpc.Server(workers=4, max_message=1024)
    handlers = {
        "Echo": lambda request, context: request,
        "Who": lambda request, context: str(context.caller).encode(),
        "Big": lambda request, context: b"x" * 300_000,
        "Fail": lambda request, context: context.abort(grpc.StatusCode.NOT_FOUND, "container é gone"),
        "Crash": crash,
        "Slow": slow,
        "Thread": lambda request, context: threading.current_thread().name.encode(),
    }
    server.add_registered_method_handlers(SERVICE, {
        name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in handlers.items()})
    server.add_registered_method_handlers(SERVICE, {
        "Count": grpc.unary_stream_rpc_method_handler(lambda request, context: (b"%d" % i for i in range(int(request)))),
        "Chat": grpc.stream_stream_rpc_method_handler(lambda requests, context: (r.upper() for r in requests)),
        "Sum": grpc.stream_unary_rpc_method_handler(lambda requests, context: b"%d" % sum(map(int, requests))),
    })
    server.quick[f"/{SERVICE}/Thread"] = server.methods[f"/{SERVICE}/Thread"].unary_unary
    server.quick[f"/{SERVICE}/Slow"] = declined
    checker = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    reflection.enable_server_reflection((SERVICE, reflection.SERVICE_NAME), server)
    path = tmp_path / "api.sock"
    gate = Gate(path, server.serve_connection)
    gate.start()
    channel = grpc.insecure_channel(f"unix:{path}")
    try:
        yield server, channel, checker
    finally:
        channel.close()
        gate.stop()
        server.stop(1)


def unary(channel, method, request=b"", timeout=10):
    return channel.unary_unary(f"/{SERVICE}/{method}")(request, timeout=timeout)


def test_unary_calls_answer_and_know_their_caller(served):
    _, channel, _ = served
    assert unary(channel, "Echo", b"hello") == b"hello"
    assert unary(channel, "Who") == f"uid={os.getuid()} pid={os.getpid()}".encode()
    assert unary(channel, "Big") == b"x" * 300_000  # past the client's first window


def test_errors_become_statuses_without_tracebacks(served):
    _, channel, _ = served
    with pytest.raises(grpc.RpcError) as e:
        unary(channel, "Fail")
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.NOT_FOUND, "container é gone")
    with pytest.raises(grpc.RpcError) as e:
        unary(channel, "Crash")
    assert e.value.code() == grpc.StatusCode.UNKNOWN and "secret" not in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary("/test.Echo/Nope")(b"")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED and "/test.Echo/Nope" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        unary(channel, "Echo", b"y" * 2000)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert unary(channel, "Echo", b"still fine") == b"still fine"


def test_quick_calls_run_on_the_connections_thread_and_declined_ones_on_a_worker(served):
    _, channel, _ = served
    assert unary(channel, "Thread").startswith(b"rpc-conn-")
    assert unary(channel, "Slow").startswith(b"rpc_")


def test_streams_both_ways(served):
    _, channel, _ = served
    assert list(channel.unary_stream(f"/{SERVICE}/Count")(b"3", timeout=10)) == [b"0", b"1", b"2"]
    assert list(channel.stream_stream(f"/{SERVICE}/Chat")(iter([b"a", b"b"]), timeout=10)) == [b"A", b"B"]
    assert channel.stream_unary(f"/{SERVICE}/Sum")(iter([b"1", b"2", b"39"]), timeout=10) == b"42"


def test_many_concurrent_calls_on_one_connection(served):
    _, channel, _ = served
    with futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: unary(channel, "Echo", b"%d" % i), range(400)))
    assert answers == [b"%d" % i for i in range(400)]


def test_health_check_and_watch(served):
    _, channel, checker = served
    stub = health_pb2_grpc.HealthStub(channel)
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    assert stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status == serving
    with pytest.raises(grpc.RpcError) as e:
        stub.Check(health_pb2.HealthCheckRequest(service="unknown"), timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    watch = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert next(watch).status == serving
    checker.set("", not_serving)
    assert next(watch).status == not_serving
    watch.cancel()


def test_reflection_lists_the_services(served):
    _, channel, _ = served
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    [answer] = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    assert {s.name for s in answer.list_services_response.service} == {SERVICE, reflection.SERVICE_NAME}


def test_stop_lets_calls_in_flight_finish_and_refuses_new_ones(served):
    server, channel, _ = served
    assert unary(channel, "Echo", b"connected") == b"connected"
    with futures.ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(unary, channel, "Slow", b"0.5")
        time.sleep(0.2)
        server.stop(5)
        assert in_flight.result().startswith(b"rpc_")
    with pytest.raises(grpc.RpcError) as e:
        unary(channel, "Echo", b"late", timeout=2)
    assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
