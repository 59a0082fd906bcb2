"""Health follows self-repair: NOT_SERVING while a repair keeps failing, SERVING once it works."""

from netd import daemon
from netd.errors import FirewallError


class FlakyService:
    def __init__(self):
        self.broken = True

    def heal(self):
        if self.broken:
            raise FirewallError("failed to apply nftables table inet netd: nft not found")
        return 1


def test_health_is_not_serving_while_repair_fails():
    serving, service = [], FlakyService()
    daemon.heal(service, serving.append)
    assert serving == [False]
    service.broken = False
    daemon.heal(service, serving.append)
    assert serving == [False, True]
