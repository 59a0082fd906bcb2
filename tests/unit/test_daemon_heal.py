"""Health follows self-repair: NOT_SERVING while a repair keeps failing, SERVING once it works."""

from grpc_health.v1 import health, health_pb2

from netd import daemon
from netd.errors import FirewallError


class FlakyService:
    def __init__(self):
        self.broken = True

    def heal(self):
        if self.broken:
            raise FirewallError("failed to apply nftables table inet netd: nft not found")
        return 1


def status(servicer):
    return servicer.Check(health_pb2.HealthCheckRequest(service=""), None).status


def test_health_is_not_serving_while_repair_fails():
    servicer, service = health.HealthServicer(), FlakyService()
    daemon.heal(service, servicer)
    assert status(servicer) == health_pb2.HealthCheckResponse.NOT_SERVING
    service.broken = False
    daemon.heal(service, servicer)
    assert status(servicer) == health_pb2.HealthCheckResponse.SERVING
