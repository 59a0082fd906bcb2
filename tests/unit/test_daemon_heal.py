"""Health follows self-repair: what a healer round leaves broken is what health reports."""

from netd import daemon
from netd.service import Problem


class FlakyService:
    def __init__(self):
        self.broken = True

    def heal(self):
        if self.broken:
            return {}, [Problem("bridge netd0: in the way", "default")]
        return {"bridge": 1}, []


def test_health_reports_what_a_round_left_broken():
    reported, service = [], FlakyService()
    daemon.heal(service, reported.append)
    assert reported == [[Problem("bridge netd0: in the way", "default")]]
    service.broken = False
    daemon.heal(service, reported.append)
    assert reported[-1] == []


def test_the_instance_id_is_made_once_and_says_whether_an_older_netd_left_the_state_dir(tmp_path):
    fresh, old = tmp_path / "fresh", tmp_path / "old"
    fresh.mkdir()
    old.mkdir()
    (old / "netd.db").write_bytes(b"")
    instance, taking_over = daemon.instance_of(fresh)
    assert len(instance) == 8 and not taking_over
    assert daemon.instance_of(fresh) == (instance, False)
    assert daemon.instance_of(old)[1] is True
    assert daemon.instance_of(old)[1] is False  # once
