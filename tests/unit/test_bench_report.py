from bench.run import markdown, stats


def _phase(p50: float, per_s: float, steal: float) -> dict:
    return {"n": 2, "p50": p50, "p90": p50, "p99": p50, "max": p50, "per_s": per_s, "steal_pct": steal}


def test_stats_take_throughput_from_the_wall_clock_when_given():
    assert stats([1.0, 3.0], wall_s=0.5)["per_s"] == 4.0
    assert stats([1.0, 3.0])["per_s"] == 500.0  # sequential: back to back


def test_report_compares_each_anchor_with_netd_and_carries_the_cpu_steal():
    results = {"date": "D", "machine": "M", "scenarios": {"sequential 2": {
        "netd": {"attach": _phase(2.0, 400.0, 5.0), "detach": _phase(20.0, 50.0, 6.0), "first_ping_lost": 0},
        "cni-bridge": {"attach": _phase(40.0, 25.0, 7.0), "detach": _phase(80.0, 12.5, 8.0), "first_ping_lost": 1},
    }}}
    report = markdown(results)
    assert "| sequential 2 attach | netd | 2.0 | 2.0 | 2.0 | 2.0 | 400.0 | 1.0x | 5.0 |" in report
    assert "| sequential 2 attach | cni-bridge | 40.0 | 40.0 | 40.0 | 40.0 | 25.0 | 20.0x (per s 16.0x) | 7.0 |" in report
    assert "| sequential 2 detach | cni-bridge | 80.0 | 80.0 | 80.0 | 80.0 | 12.5 | 4.0x (per s 4.0x) | 8.0 |" in report
    assert "cni-bridge 1 in sequential 2" in report
