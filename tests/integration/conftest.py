import os

import grpc
import pytest

from netd.v1 import netd_pb2 as pb
from netd.v1 import netd_pb2_grpc as pb_grpc
from tests.sandbox import Sandbox, remove_leftovers


def pytest_collection_modifyitems(items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="integration tests need root (network namespaces)")
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_namespaces():
    if os.geteuid() == 0:
        remove_leftovers()
    yield
    if os.geteuid() == 0:
        remove_leftovers()


@pytest.fixture
def sandbox():
    sb = Sandbox()
    try:
        sb.up()
        sb.start_outside_server()
        yield sb
    finally:
        sb.down()


@pytest.fixture
def netd(sandbox):
    sandbox.start_netd()
    return sandbox


class Client:
    """A gRPC client for the sandbox's netd."""

    def __init__(self, socket_path):
        self.channel = grpc.insecure_channel(f"unix:{socket_path}")
        self.stub = pb_grpc.NetdStub(self.channel)

    def attach(self, container_id, **fields):
        return self.stub.AttachContainer(
            pb.AttachContainerRequest(container_id=container_id, **fields), timeout=30).endpoint

    def detach(self, container_id):
        return self.stub.DetachContainer(pb.DetachContainerRequest(container_id=container_id), timeout=30).detached

    def list(self):
        return list(self.stub.ListEndpoints(pb.ListEndpointsRequest(), timeout=30).endpoints)

    def code_of(self, call, *args, **kwargs):
        with pytest.raises(grpc.RpcError) as info:
            call(*args, **kwargs)
        return info.value.code(), info.value.details()


@pytest.fixture
def client(netd):
    c = Client(netd.socket)
    yield c
    c.channel.close()
