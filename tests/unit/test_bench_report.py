import subprocess
import sys
import time

import pytest

from bench.ab import report, turns
from bench.run import churn_items, mark_visits, markdown, stats, take_turns, timed
from bench.tools import GoClient, children_cpu_seconds, process_cpu_seconds


def _phase(p50: float, per_s: float, steal: float, cpu: float = 1.0) -> dict:
    return {"n": 2, "p50": p50, "p90": p50, "p99": p50, "max": p50, "per_s": per_s, "steal_pct": steal, "cpu_ms": cpu}


def test_stats_take_throughput_from_the_wall_clock_when_given():
    assert stats([1.0, 3.0], wall_s=0.5)["per_s"] == 4.0
    assert stats([1.0, 3.0])["per_s"] == 500.0  # sequential: back to back


def test_report_compares_each_anchor_with_netd_and_carries_the_tools_cpu_and_the_steal():
    results = {"date": "D", "machine": "M", "scenarios": {"sequential 2": {
        "netd": {"attach": _phase(2.0, 400.0, 5.0, 3.1), "detach": _phase(20.0, 50.0, 6.0), "first_ping_lost": 0},
        "netd (Python client)": {"attach": _phase(2.5, 300.0, 5.0, 3.1), "detach": _phase(20.0, 50.0, 6.0),
                                 "first_ping_lost": 0},
        "cni-bridge": {"attach": _phase(40.0, 25.0, 7.0, 30.2), "detach": _phase(80.0, 12.5, 8.0),
                       "first_ping_lost": 1},
    }}}
    report = markdown(results)
    assert "| sequential 2 attach | netd | 2.0 | 2.0 | 2.0 | 2.0 | 400.0 | 1.0x | 3.1 | 5.0 |" in report
    assert "| sequential 2 attach | netd (Python client) | 2.5 | 2.5 | 2.5 | 2.5 | 300.0 | - | 3.1 | 5.0 |" in report
    assert "| sequential 2 attach | cni-bridge | 40.0 | 40.0 | 40.0 | 40.0 | 25.0 | 20.0x (per s 16.0x) | 30.2 | 7.0 |" in report
    assert "| sequential 2 detach | cni-bridge | 80.0 | 80.0 | 80.0 | 80.0 | 12.5 | 4.0x (per s 4.0x) | 1.0 | 8.0 |" in report
    assert "cni-bridge 1 in sequential 2" in report


def test_the_scale_run_visits_every_mark_early_midway_and_late():
    visits = mark_visits((10, 500, 1000))
    assert visits == [10, 500, 1000, 1000, 500, 10, 10, 500, 1000]
    # each mark's mean position in the run is near the middle: no mark gets only its end
    middle = (len(visits) - 1) / 2
    for mark in (10, 500, 1000):
        positions = [i for i, m in enumerate(visits) if m == mark]
        assert len(positions) == 3 and abs(sum(positions) / 3 - middle) <= 0.5


def test_scale_report_shows_each_mark_and_the_growth_from_the_first_to_the_last():
    scale = {"endpoints": 1000, "visits": [10, 1000, 1000, 10],
             "attach_at": {"10": _phase(3.0, 300.0, 2.0) | {"p99": 8.0}, "1000": _phase(4.5, 200.0, 3.0) | {"p99": 10.0}},
             "list_endpoints": _phase(4.0, 250.0, 0.0), "rss_mib": {"0": 40.0, "1000": 50.0}, "ready_ms": 900.0,
             "first_ping_lost": 0}
    report = markdown({"date": "D", "machine": "M", "scenarios": {}, "scale": scale})
    assert "visiting the marks 10 → 1000 → 1000 → 10" in report
    assert "| attach at 1000 endpoints | 4.5 | 10.0 | 4.5 | 3.0 |" in report
    assert "From 10 to 1000 endpoints, attach p50 grew 1.50x and p99 1.25x." in report


def test_tools_take_turns_going_first_round_by_round():
    orders = [take_turns(["netd", "cni", "netavark"], r) for r in range(4)]
    assert orders == [["netd", "cni", "netavark"], ["cni", "netavark", "netd"],
                      ["netavark", "netd", "cni"], ["netd", "cni", "netavark"]]


def test_report_says_the_rounds_were_pooled():
    results = {"date": "D", "machine": "M", "rounds": 4, "scenarios": {"sequential 2": {
        "netd": {"attach": _phase(2.0, 400.0, 5.0), "detach": _phase(20.0, 50.0, 6.0), "first_ping_lost": 0}}}}
    assert "Each scenario ran in 4 rounds, the tools taking turns" in markdown(results)


def test_cpu_seconds_of_finished_children_and_of_a_running_process():
    before = children_cpu_seconds()
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
    assert children_cpu_seconds() - before > 0.05
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        deadline = time.monotonic() + 20
        while process_cpu_seconds(busy.pid) < 0.1:
            assert time.monotonic() < deadline, "a spinning process showed no CPU time"
            time.sleep(0.05)
    finally:
        busy.kill()
        busy.wait()


def test_ab_builds_take_turns_going_first_and_the_report_compares_b_with_a():
    assert [turns(i) for i in range(4)] == [(0, 1), (1, 0), (0, 1), (1, 0)]
    a = {"p50": 4.0, "p90": 5.0, "p99": 10.0, "max": 12.0, "cpu_ms": 3.2}
    b = {"p50": 3.0, "p90": 4.0, "p99": 8.0, "max": 9.0, "cpu_ms": 2.4}
    text = report(["A HEAD~1", "B working tree"], [a, b], 12.5)
    assert "| A HEAD~1 | 4.0 | 5.0 | 10.0 | 12.0 | 3.2 |" in text
    assert "B / A: p50 0.750, p99 0.800, CPU 0.750" in text and "CPU steal 12.5%" in text


def test_a_call_that_times_itself_is_taken_at_its_word():
    assert timed(lambda: 1.25) == 1.25
    assert 0 < timed(lambda: None) < 1000


def test_go_client_wrapper_reads_each_answer_and_raises_on_an_error(tmp_path):
    # The Go client's line protocol on its IN:OUT pair, from bash (dash redirects only fds 0-9).
    fake = tmp_path / "client"
    fake.write_text('#!/bin/bash\nexec <&"${2%:*}" >&"${2#*:}"\n'
                    'read -r line; echo "ok 2500"\n'
                    'read -r line; echo "error AlreadyExists container_id c1 is attached"\n')
    fake.chmod(0o755)
    client = GoClient(tmp_path / "sock", program=fake)
    try:
        assert client.call("attach", "c1", "42") == 2.5
        with pytest.raises(RuntimeError, match="netd attach c1 42: AlreadyExists container_id c1 is attached"):
            client.call("attach", "c1", "42")
        with pytest.raises(RuntimeError, match="the Go client exited"):
            client.call("list")
    finally:
        client.close()


def test_churn_detaches_the_oldest_and_attaches_a_new_one_in_turn():
    assert churn_items(3, 2) == [("detach", 0), ("attach", 3), ("detach", 1), ("attach", 4)]
    with pytest.raises(AssertionError):
        churn_items(2, 3)  # container 2 would be attached while still attached


def test_churn_report_shows_attach_and_detach_apart():
    churn = {"standing": 500, "turnover": 400, "callers": 4, "wall_s": 3.5, "steal_pct": 4.0, "first_ping_lost": 0,
             "attach": _phase(9.0, 100.0, 0.0), "detach": _phase(30.0, 30.0, 0.0)}
    report = markdown({"date": "D", "machine": "M", "scenarios": {}, "churn": churn})
    assert "netd under churn (500 endpoints standing; 4 callers detach the oldest" in report
    assert "| attach | 9.0 | 9.0 | 9.0 | 9.0 |" in report and "| detach | 30.0 | 30.0 | 30.0 | 30.0 |" in report
