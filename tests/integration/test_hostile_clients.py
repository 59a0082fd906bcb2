"""The API socket survives hostile and broken clients (tests/hostile.py):
while each attack runs, a legitimate client's calls keep succeeding, netd's
threads and memory stay bounded, and afterwards netd accepts new connections."""

import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from netd.v1 import netd_pb2 as pb
from netd.v1 import netd_pb2_grpc as pb_grpc
from tests.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
ATTACK_SECONDS = 6
ENDPOINTS = 100  # ListEndpoints answers of ~14 KB
# What netd may grow to under any one attack (at rest: ~23 threads, ~57 MiB;
# the most seen: 23 threads, 115 MiB, under zero_window).
MAX_THREADS = 48
MAX_RSS_MIB = 200
LEGIT_P99_MS = 1000


@pytest.fixture(scope="module")
def target():
    sandbox = Sandbox()
    try:
        sandbox.up()
        sandbox.start_netd()
        with grpc.insecure_channel(f"unix:{sandbox.socket}") as channel:
            stub = pb_grpc.NetdStub(channel)
            for i in range(ENDPOINTS):
                stub.AttachContainer(pb.AttachContainerRequest(container_id=f"c{i}", pid=sandbox.container().pid),
                                     timeout=30)
        yield sandbox
    finally:
        sandbox.down()


class Legit:
    """ListEndpoints every 50 ms on one channel (2 s deadline), and a health
    Check on a new connection every second (3 s deadline)."""

    def __init__(self, socket_path: Path) -> None:
        self.target = f"unix:{socket_path}"
        self.results: list[tuple[str, bool, float, str]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=f) for f in (self._persistent, self._fresh)]
        for t in self.threads:
            t.start()

    def _timed(self, kind: str, call) -> float:
        started = time.perf_counter()
        try:
            call()
            ok, code = True, "OK"
        except grpc.RpcError as e:
            ok, code = False, e.code().name
        ms = (time.perf_counter() - started) * 1000
        self.results.append((kind, ok, ms, code))
        return ms

    def _persistent(self) -> None:
        with grpc.insecure_channel(self.target) as channel:
            stub = pb_grpc.NetdStub(channel)
            while not self.stop.is_set():
                ms = self._timed("list", lambda: stub.ListEndpoints(pb.ListEndpointsRequest(), timeout=2))
                self.stop.wait(max(0.0, 0.05 - ms / 1000))

    def _fresh(self) -> None:
        while not self.stop.is_set():
            with grpc.insecure_channel(self.target, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                ms = self._timed("fresh", lambda: stub.Check(health_pb2.HealthCheckRequest(), timeout=3))
            self.stop.wait(max(0.0, 1.0 - ms / 1000))

    def finish(self) -> list[tuple[str, bool, float, str]]:
        self.stop.set()
        for t in self.threads:
            t.join()
        return self.results


def sample(pid: int, stop: threading.Event, peaks: dict) -> None:
    while not stop.is_set():
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        peaks["threads"] = max(peaks.get("threads", 0), int(status["Threads"]))
        peaks["rss_mib"] = max(peaks.get("rss_mib", 0), int(status["VmRSS"].split()[0]) // 1024)
        stop.wait(0.1)


@pytest.mark.parametrize("attack", ["slow_reader", "idle", "watch_streams", "endless_request", "rapid_reset",
                                    "zero_window"])
def test_netd_keeps_serving_through(target, attack):
    pid = target.netd_proc.pid
    peaks: dict = {}
    stop = threading.Event()
    sampler = threading.Thread(target=sample, args=(pid, stop, peaks))
    sampler.start()
    legit = Legit(target.socket)
    try:
        attacker = subprocess.run([sys.executable, "-m", "tests.hostile", attack, str(target.socket),
                                   str(ATTACK_SECONDS)], cwd=ROOT, capture_output=True, text=True,
                                  timeout=ATTACK_SECONDS + 60)
    finally:
        results = legit.finish()
        stop.set()
        sampler.join()
    latencies = sorted(ms for _, _, ms, _ in results)
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(f"{attacker.stdout.strip()}; legit: {len(results)} calls, p50 {statistics.median(latencies):.1f} "
          f"p99 {p99:.1f} ms; netd peaks: {peaks}")
    assert attacker.returncode == 0, attacker.stderr[-2000:]
    failed = [r for r in results if not r[1]]
    assert not failed, f"{len(failed)} of {len(results)} legitimate calls failed: {failed[:5]}"
    assert len(results) >= ATTACK_SECONDS * 10 and p99 < LEGIT_P99_MS, \
        f"{len(results)} calls, p50 {statistics.median(latencies):.1f} p99 {p99:.1f} ms"
    assert peaks["threads"] <= MAX_THREADS and peaks["rss_mib"] <= MAX_RSS_MIB, peaks
    assert target.netd_proc.poll() is None
    with grpc.insecure_channel(f"unix:{target.socket}", options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
