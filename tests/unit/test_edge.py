"""Errors at the gRPC edge: each NetdError becomes its status, the rest INTERNAL without a traceback."""

import os
import threading

import grpc
import pytest

from netd import errors
from netd.server import at_the_edge, status_code


class AbortCalled(Exception):
    pass


class FakeContext:
    def abort(self, code, details):
        self.code, self.details = code, details
        raise AbortCalled


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
    (errors.KernelError("x"), grpc.StatusCode.INTERNAL),
    (errors.FirewallError("x"), grpc.StatusCode.INTERNAL),
    (errors.StoreError("x"), grpc.StatusCode.INTERNAL),
])
def test_status_codes(error, code):
    assert status_code(error) == code


def call(exc, is_ready=True):
    class Servicer:
        ready = threading.Event()
        if is_ready:
            ready.set()

        @at_the_edge
        def Method(self, request, context):
            raise exc

    ctx = FakeContext()
    with pytest.raises(AbortCalled):
        Servicer().Method(None, ctx)
    return ctx


def test_netd_error_message_reaches_the_client():
    ctx = call(errors.ContainerNotFound("pid 7: no such process"))
    assert (ctx.code, ctx.details) == (grpc.StatusCode.NOT_FOUND, "pid 7: no such process")


def test_unexpected_error_is_internal_without_traceback():
    ctx = call(ZeroDivisionError("secret detail"))
    assert ctx.code == grpc.StatusCode.INTERNAL
    assert "Traceback" not in ctx.details and "secret" not in ctx.details


def test_calls_before_reconcile_is_done_are_unavailable_not_internal():
    ctx = call(ZeroDivisionError("never reached"), is_ready=False)
    assert ctx.code == grpc.StatusCode.UNAVAILABLE and "reconciling" in ctx.details


def test_endpoint_listing_follows_the_store_and_reuses_unchanged_answers():
    from dataclasses import replace

    from netd.server import EndpointListing, endpoint_to_proto
    from netd.store.memory import MemoryStore
    from tests.unit.test_store import endpoint

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
    from netd.server import EndpointListing, endpoint_to_proto
    from tests.unit.test_store import endpoint

    listing, e = EndpointListing(), endpoint()
    proto = endpoint_to_proto(e)
    proto.owner = "as remembered"  # tells the remembered encoding from a fresh one
    listing.remember(e, proto)
    assert listing.answer([e], "").endpoints[0].owner == "as remembered"
    assert listing.answer([endpoint()], "").endpoints[0].owner == ""  # an equal but new record is encoded again


class FakeAioContext:
    async def abort(self, code, details):
        self.code, self.details = code, details
        raise AbortCalled


def test_a_call_on_the_loop_runs_there_unless_offloaded_or_busy_and_aborts_with_its_status():
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from netd.server import on_the_loop
    from netd.service import Busy

    class Servicer:
        ready = threading.Event()
        pool = ThreadPoolExecutor(1, thread_name_prefix="pool")

        @on_the_loop(offload=lambda request: request == "slow")
        def Method(self, request, context, wait=True):
            if request == "bad":
                raise errors.InvalidArgument("request: bad")
            if request == "contended" and not wait:
                raise Busy("c1")
            return threading.current_thread().name

    Servicer.ready.set()

    async def calls():
        loop_thread = threading.current_thread().name
        assert await Servicer().Method("fast", None) == loop_thread
        assert (await Servicer().Method("slow", None)).startswith("pool")
        assert (await Servicer().Method("contended", None)).startswith("pool")
        ctx = FakeAioContext()
        with pytest.raises(AbortCalled):
            await Servicer().Method("bad", ctx)
        return ctx

    try:
        ctx = asyncio.run(calls())
    finally:
        Servicer.pool.shutdown()
    assert (ctx.code, ctx.details) == (grpc.StatusCode.INVALID_ARGUMENT, "request: bad")


@pytest.mark.parametrize("current,expected", [
    ("", "-event_engine_listener"),
    ("some_experiment", "some_experiment,-event_engine_listener"),
    ("event_engine_listener", "event_engine_listener"),  # the operator's choice stands
])
def test_grpc_experiments_turn_the_event_engine_listener_off(current, expected):
    from netd.server import grpc_experiments

    assert grpc_experiments(current) == expected


def test_grpc_sees_the_experiments_when_netd_imports_it_first():
    import subprocess
    import sys

    # gRPC reads GRPC_EXPERIMENTS at import: record what it is at that moment.
    probe = """
import importlib.abc, os, sys
seen = []
class Probe(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "grpc" and not seen:
            seen.append(os.environ.get("GRPC_EXPERIMENTS", ""))
sys.meta_path.insert(0, Probe())
import netd.daemon
print(seen[0])
"""
    env = {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "-event_engine_listener"
