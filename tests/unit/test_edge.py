"""Errors at the gRPC edge: each NetdError becomes its status, the rest INTERNAL without a traceback."""

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


def test_a_quick_call_runs_unless_slow_or_busy_and_aborts_with_its_status():
    from netd import rpc
    from netd.server import quick_unless
    from netd.service import Busy

    ran = []

    class Servicer:
        ready = threading.Event()

        @quick_unless(slow=lambda request: request == "slow")
        def Method(self, request, context, wait=True):
            if request == "bad":
                raise errors.InvalidArgument("request: bad")
            if request == "contended" and not wait:
                raise Busy("c1")
            ran.append((request, wait))
            return request

    Servicer.ready.set()
    quick = Servicer.Method.quick
    assert quick(Servicer(), "fast", None) == "fast"
    for request in ("slow", "contended"):
        with pytest.raises(rpc.Slow):
            quick(Servicer(), request, None)
    ctx = FakeContext()
    with pytest.raises(AbortCalled):
        quick(Servicer(), "bad", ctx)
    assert (ctx.code, ctx.details) == (grpc.StatusCode.INVALID_ARGUMENT, "request: bad")
    # declined calls did nothing; a worker then runs the method itself, waiting
    assert ran == [("fast", False)]
    assert Servicer().Method("contended", None) == "contended" and ran[-1] == ("contended", True)
