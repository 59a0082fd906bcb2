"""Random and malformed requests through a real gRPC channel: never INTERNAL,
never a crash, no state change on a rejected call."""

import os

import grpc
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from netd.v1 import netd_pb2 as pb

EXAMPLES = int(os.environ.get("NETD_FUZZ_EXAMPLES", "300"))
ALLOWED = {
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED,
}

ids = st.one_of(st.text(max_size=200), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,130}", fullmatch=True))
ifnames = st.one_of(st.just(""), st.just("eth1"), st.text(max_size=20), st.sampled_from(["lo", "a/b", "x" * 16, "é"]))
addresses = st.one_of(
    st.just(""), st.just(""), st.just(""), st.text(max_size=40), st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str),
    st.sampled_from(["10.89.0.1", "10.89.0.0", "10.89.255.255", "10.89.0.2/16"]),
)
paths = st.one_of(
    st.just(""), st.text(max_size=100),
    st.sampled_from(["/proc/self/ns/net", "/proc/1/ns/net", "/", "/dev/null", "/proc/self/ns/pid", "/run/netns"]),
)
networks = st.one_of(st.just(""), st.just(""), st.just("default"), st.text(max_size=70))
port_numbers = st.one_of(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=1, max_value=65535))
ports = st.lists(st.builds(
    pb.PortMapping, protocol=st.sampled_from(["", "tcp", "udp", "UDP", "sctp", "é"]),
    host_ip=st.one_of(st.just(""), addresses), host_port=port_numbers, container_port=port_numbers,
    range=st.one_of(st.just(0), st.integers(min_value=0, max_value=2**32 - 1))), max_size=3)
pids = st.one_of(st.integers(min_value=-(2**31), max_value=2**31 - 1), st.integers(min_value=2, max_value=4194304))


@st.composite
def attach_requests(draw):
    """Mostly one of pid / netns_path with a well-formed id, so calls get past
    the first check and exercise the deeper ones."""
    mode = draw(st.sampled_from(["pid", "pid", "path", "path", "both", "neither"]))
    return pb.AttachContainerRequest(
        container_id=draw(st.one_of(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True), ids)),
        pid=draw(pids) if mode in ("pid", "both") else 0,
        netns_path=draw(paths) if mode in ("path", "both") else "",
        ifname=draw(ifnames),
        ip_address=draw(addresses),
        network=draw(networks),
        ports=draw(ports),
    )


def test_random_requests_are_refused_cleanly(netd, client):
    seen: dict = {}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(request=attach_requests())
    def attach(request):
        # A live process outside netd's netns would be a valid container, not bad input.
        assume(request.pid <= 1 or not os.path.exists(f"/proc/{request.pid}"))
        before = client.list()
        try:
            client.stub.AttachContainer(request, timeout=10)
        except grpc.RpcError as e:
            assert e.code() in ALLOWED, (e.code(), e.details())
            assert e.details() and "Traceback" not in e.details()
            seen[e.code()] = seen.get(e.code(), 0) + 1
        else:
            raise AssertionError(f"accepted {request}")
        assert client.list() == before

    @settings(max_examples=EXAMPLES // 3, deadline=None, suppress_health_check=list(HealthCheck))
    @given(cid=ids)
    def detach(cid):
        try:
            assert client.detach(cid) is False
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())

    attach()
    detach()
    assert netd.netd_proc.poll() is None
    assert not any(e["event"] == "call_crashed" for e in netd.netd_log())
    assert [link for link in netd.host_json("link", "show") if link.get("master") == "netd0"] == []
    print(f"fuzzed {EXAMPLES} attach + {EXAMPLES // 3} detach requests: {dict((k.name, v) for k, v in seen.items())}")
