"""`make bench`: netd against the CNI bridge plugin and netavark, same run, same machine.

Each tool gets its own throwaway sandbox (host netns + outside netns, from
tests/sandbox.py) and fresh `unshare --net` containers. Only the calls are
timed; every attach is verified afterwards (address, default route, gateway
answers ping) and every detach is verified clean (no port left on the bridge,
no eth0 left in the container). Results go to bench/results/ as markdown and
JSON. Nothing here asserts a number.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.tools import CLIENTS, NetdTool, available
from tests.sandbox import Container, Sandbox, remove_leftovers

RESULTS = Path(__file__).parent / "results"
SEQUENTIAL = int(os.environ.get("BENCH_SEQUENTIAL", "200"))
CONCURRENT = int(os.environ.get("BENCH_CONCURRENT", "400"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "4"))
SCALE = int(os.environ.get("BENCH_SCALE", "1000"))
CHURN = int(os.environ.get("BENCH_CHURN", "500"))  # endpoints standing
DNS_ATTACHES = int(os.environ.get("BENCH_DNS", "200"))  # attaches timed with and without a flood of queries
CHURN_CALLERS = 4
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@contextmanager
def inside(netns_name: str):
    """Run the main thread (and threads it starts, and programs it execs) in a sandbox netns."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns_name}", os.O_RDONLY)
    if _libc.setns(target, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), f"setns into {netns_name}")
    try:
        yield
    finally:
        if _libc.setns(own, CLONE_NEWNET) != 0:
            os._exit(70)  # never go on in the wrong namespace
        os.close(own)
        os.close(target)


def stats(latencies_ms: list[float], wall_s: float | None = None) -> dict:
    xs = sorted(latencies_ms)
    pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
    return {
        "n": len(xs), "p50": round(statistics.median(xs), 2), "p90": round(pick(0.90), 2),
        "p99": round(pick(0.99), 2), "max": round(xs[-1], 2),
        "per_s": round(len(xs) / (wall_s if wall_s else sum(xs) / 1000), 1),
    }


def cpu_ticks() -> tuple[int, int]:
    """(busy, stolen) CPU ticks of the whole machine so far."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return user + nice + system + irq + softirq + steal, steal


def steal_share(busy: int, stolen: int) -> float:
    """The share of busy CPU time the hypervisor gave other guests: on a VM
    latencies grow with it, so each timing carries it."""
    return round(100 * stolen / max(1, busy), 1)


def timed(fn: Callable, *args: object) -> float:
    """ms the call took: as the call itself returns it when it does (a client
    that times its own RPCs), else measured around it."""
    started = time.perf_counter()
    own = fn(*args)
    return own if own is not None else (time.perf_counter() - started) * 1000


def run_concurrently(fn: Callable[[int, Container], None], items: list[tuple[int, Container]],
                     callers: int = CLIENTS) -> tuple[list[float], float]:
    """fn on every item, `callers` calls at a time: each call's ms, in the
    items' order, and the wall seconds for all."""
    work: queue.Queue = queue.Queue()
    for n, item in enumerate(items):
        work.put((n, item))
    latencies: list[float] = [0.0] * len(items)
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            try:
                n, (i, c) = work.get_nowait()
            except queue.Empty:
                return
            try:
                latencies[n] = timed(fn, i, c)
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    return latencies, wall


# -- verification (outside the timed region) ------------------------------

def check_attached(tool, c: Container) -> bool:
    """Address, default route, gateway answers. False if the first ping was lost
    (e.g. a bridge whose MAC changed under the container's ARP entry)."""
    info = json.loads(c.run("ip", "-j", "-4", "addr", "show", "dev", "eth0").stdout)
    addresses = [a["local"] for a in info[0]["addr_info"]]
    routes = json.loads(c.run("ip", "-j", "route", "show", "default").stdout)
    assert addresses and routes, f"{tool.name}: container {c.pid} has no address or default route"
    gateway = routes[0]["gateway"]
    for attempt in range(3):
        if c.run("ping", "-c1", "-W2", gateway, check=False).returncode == 0:
            return attempt == 0
    raise AssertionError(f"{tool.name}: gateway {gateway} unreachable from container {c.pid}")


def verify_attached(tool, containers: list[Container]) -> int:
    """Verify every attach; returns how many lost their first ping to the gateway."""
    with ThreadPoolExecutor(8) as pool:
        return sum(not ok for ok in pool.map(lambda c: check_attached(tool, c), containers))


def verify_detached(sandbox: Sandbox, tool, containers: list[Container]) -> None:
    with ThreadPoolExecutor(8) as pool:
        left = [c.pid for c, out in zip(containers, pool.map(lambda c: c.run("ip", "-br", "link").stdout, containers))
                if "eth0" in out]
    assert not left, f"{tool.name}: eth0 left in containers {left[:5]}"
    ports = [link for link in sandbox.host_json("link", "show") if link.get("master") == tool.bridge]
    assert not ports, f"{tool.name}: {len(ports)} ports left on {tool.bridge}"


# -- scenarios --------------------------------------------------------------

class ToolRun:
    """One tool in a sandbox of its own, through the rounds of a scenario."""

    def __init__(self, tool_cls: type, n: int, concurrent: bool) -> None:
        self.concurrent = concurrent
        self.sandbox = Sandbox()
        try:
            self.sandbox.up()
            with inside(self.sandbox.host):
                self.tool = tool_cls(self.sandbox)
                self.containers = [self.sandbox.container() for _ in range(n)]
        except BaseException:
            self.sandbox.down()
            raise
        self.latencies: dict[str, list[float]] = {"attach": [], "detach": []}
        # wall seconds, the machine's busy and stolen CPU ticks, the tool's own CPU seconds
        self.totals = {"attach": [0.0, 0, 0, 0.0], "detach": [0.0, 0, 0, 0.0]}
        self.first_ping_lost = 0

    def round(self, first: int, count: int) -> None:
        """Attach containers first..first+count, verify, detach them, verify."""
        items = list(enumerate(self.containers))[first:first + count]
        with inside(self.sandbox.host):
            for phase, call in (("attach", self.tool.attach), ("detach", self.tool.detach)):
                busy, stolen = cpu_ticks()
                used = self.tool.cpu_seconds()
                if self.concurrent:
                    latencies, wall = run_concurrently(call, items)
                else:
                    latencies = [timed(call, i, c) for i, c in items]
                    wall = sum(latencies) / 1000
                used_now = self.tool.cpu_seconds()
                busy_now, stolen_now = cpu_ticks()
                self.latencies[phase] += latencies
                totals = self.totals[phase]
                totals[0] += wall
                totals[1] += busy_now - busy
                totals[2] += stolen_now - stolen
                totals[3] += used_now - used
                if phase == "attach":
                    self.first_ping_lost += verify_attached(self.tool, [c for _, c in items])
            verify_detached(self.sandbox, self.tool, [c for _, c in items])

    def result(self) -> dict:
        result: dict = {"first_ping_lost": self.first_ping_lost}
        for phase, (wall, busy, stolen, used) in self.totals.items():
            result[phase] = stats(self.latencies[phase], wall) | {
                "steal_pct": steal_share(busy, stolen), "cpu_ms": round(used * 1000 / len(self.latencies[phase]), 2)}
        return result

    def close(self) -> None:
        try:
            self.tool.close()
        finally:
            self.sandbox.down()


def take_turns(runs: list, round_no: int) -> list:
    """The runs in round round_no's order: each goes first in turn."""
    k = round_no % len(runs)
    return runs[k:] + runs[:k]


def attach_detach(tools: list[type], n: int, concurrent: bool, rounds: int) -> dict:
    """Each tool attaches and detaches n containers in `rounds` rounds, the
    tools taking turns: a slow phase of the machine (CPU steal comes and goes
    over seconds) then falls on every tool alike, not on whichever runs then."""
    runs: list[ToolRun] = []
    try:
        for tool_cls in tools:
            runs.append(ToolRun(tool_cls, n, concurrent))
        size = -(-n // rounds)
        for r in range(rounds):
            for run in take_turns(runs, r):
                run.round(r * size, size)
        return {run.tool.name: run.result() for run in runs}
    finally:
        for run in runs:
            run.close()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def time_to_serving(sandbox: Sandbox) -> float:
    started = time.perf_counter()
    sandbox.start_netd("--firewall", "nftables", wait=False)
    # Short reconnect backoff: the default (1 s) would be measured instead of netd.
    options = [("grpc.initial_reconnect_backoff_ms", 5), ("grpc.min_reconnect_backoff_ms", 5),
               ("grpc.max_reconnect_backoff_ms", 20)]
    with grpc.insecure_channel(f"unix:{sandbox.socket}", options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.perf_counter() - started < 30:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return round((time.perf_counter() - started) * 1000, 1)
            except grpc.RpcError:
                time.sleep(0.005)
    raise TimeoutError("netd did not report SERVING within 30 s")


def mark_visits(marks: tuple[int, ...]) -> list[int]:
    """The marks in the order the scale run visits them: up, down, up again.
    Every mark is measured early, in the middle and late in the run, so a
    slow phase of the machine (CPU steal comes and goes over seconds) falls
    on all of them alike instead of on whichever mark it happens to meet."""
    return [*marks, *reversed(marks), *marks]


def netd_at_scale(n: int, probes: int = 200) -> dict:
    """Fill one bridge to n endpoints; at 10, n/2 and n, time `probes` extra
    attaches (each detached again, so the count stays at the mark), in
    windows spread over the run (mark_visits)."""
    sandbox = Sandbox()
    try:
        sandbox.up()
        with inside(sandbox.host):
            tool = NetdTool(sandbox)
            rss_empty = rss_mib(sandbox.netd_proc.pid)
            marks = (10, n // 2, n)
            visits = mark_visits(marks)
            per_window = -(-probes // visits.count(marks[0]))
            containers = [sandbox.container() for _ in range(n)]
            extra = [sandbox.container() for _ in range(per_window)]
            latencies: dict[int, list[float]] = {m: [] for m in marks}
            ticks = {m: [0, 0] for m in marks}  # busy, stolen
            attached = 0
            for mark in visits:
                # Between windows: untimed, CLIENTS at a time.
                if mark > attached:
                    run_concurrently(tool.attach, [(i, containers[i]) for i in range(attached, mark)])
                elif mark < attached:
                    run_concurrently(tool.detach, [(i, containers[i]) for i in range(mark, attached)])
                attached = mark
                busy, stolen = cpu_ticks()
                for k, c in enumerate(extra):
                    latencies[mark].append(timed(tool.attach, n + k, c))
                    tool.detach(n + k, c)
                busy_now, stolen_now = cpu_ticks()
                ticks[mark][0] += busy_now - busy
                ticks[mark][1] += stolen_now - stolen
            windows = {str(m): stats(latencies[m]) | {"steal_pct": steal_share(*ticks[m])} for m in marks}
            # All of them: past ~500 containers talking to their gateway, dynamic
            # neighbour entries (two per container, counted across namespaces)
            # would overflow the kernel's table (gc_thresh3, 1024).
            first_ping_lost = verify_attached(tool, containers)
            list_ms = [timed(tool.list_endpoints) for _ in range(50)]
            rss_full = rss_mib(sandbox.netd_proc.pid)
            tool.close()
            sandbox.stop_netd()
            ready_ms = time_to_serving(sandbox)
        return {
            "attach_at": windows, "visits": visits, "list_endpoints": stats(list_ms), "endpoints": n,
            "rss_mib": {"0": rss_empty, str(n): rss_full}, "ready_ms": ready_ms, "first_ping_lost": first_ping_lost,
        }
    finally:
        sandbox.down()


def churn_items(standing: int, turnover: int) -> list[tuple[str, int]]:
    """Containers 0..standing-1 are attached; one by one the oldest goes and
    a new one comes, so `standing` endpoints stay: (detach 0, attach
    standing, detach 1, attach standing+1, …)."""
    assert turnover <= standing, "a container would be attached again before it was detached"
    return [op for k in range(turnover) for op in (("detach", k), ("attach", standing + k))]


def netd_churn(standing: int, turnover: int, callers: int = CHURN_CALLERS) -> dict:
    """Containers coming and going, as on a busy node: with `standing`
    endpoints attached, `callers` callers detach the oldest and attach new
    ones, `turnover` of each, interleaved, so attaches meet detaches (and
    their veths' deletion in the kernel); each kind of call is timed apart."""
    sandbox = Sandbox()
    try:
        sandbox.up()
        with inside(sandbox.host):
            tool = NetdTool(sandbox)
            containers = [sandbox.container() for _ in range(standing + turnover)]
            run_concurrently(tool.attach, [(i, containers[i]) for i in range(standing)])
            ops = churn_items(standing, turnover)
            kinds = {i: kind for kind, i in ops}
            busy, stolen = cpu_ticks()
            latencies, wall = run_concurrently(lambda i, c: getattr(tool, kinds[i])(i, c),
                                               [(i, containers[i]) for _, i in ops], callers)
            busy_now, stolen_now = cpu_ticks()
            first_ping_lost = verify_attached(tool, containers[turnover:])
            run_concurrently(tool.detach, [(i, containers[i]) for i in range(turnover, standing + turnover)])
            verify_detached(sandbox, tool, containers)
            tool.close()
        by_kind = {kind: [ms for (k, _), ms in zip(ops, latencies) if k == kind] for kind in ("attach", "detach")}
        return {"standing": standing, "turnover": turnover, "callers": callers, "wall_s": round(wall, 2),
                "steal_pct": steal_share(busy_now - busy, stolen_now - stolen), "first_ping_lost": first_ping_lost,
                **{kind: stats(ms) for kind, ms in by_kind.items()}}
    finally:
        sandbox.down()


# A container asks netd's DNS for a name as fast as answers come back, 64
# queries in flight, for argv[2] seconds; prints the answers per second.
DNS_FLOOD = """
import select, socket, sys, time, dns.message
wire = bytearray(dns.message.make_query("target", "A").to_wire())
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect((sys.argv[1], 53)); s.setblocking(False)
sent = answered = lost = 0
started = time.monotonic(); end = started + float(sys.argv[2])
while time.monotonic() < end:
    while sent - answered - lost < 64:
        wire[0:2] = (sent & 0xFFFF).to_bytes(2, "big"); s.send(wire); sent += 1
    if not select.select([s], [], [], 0.05)[0]:
        lost = sent - answered  # nothing for 50 ms: those are not coming back
        continue
    try:
        while True:
            s.recv(512); answered += 1
    except BlockingIOError:
        pass
print(round(answered / (time.monotonic() - started)))
"""


def netd_dns_load(n: int) -> dict:
    """Attach p50 (on the default network) without and then with a flood of
    DNS queries at a created network's resolver, and the answers per second."""
    from netd.v1 import netd_pb2 as pb
    from netd.v1 import netd_pb2_grpc as pb_grpc

    sandbox = Sandbox()
    try:
        sandbox.up()
        with inside(sandbox.host):
            tool = NetdTool(sandbox)
            with grpc.insecure_channel(f"unix:{sandbox.socket}") as channel:
                stub = pb_grpc.NetdStub(channel)
                gateway = stub.CreateNetwork(pb.CreateNetworkRequest(name="dnsbench"), timeout=10).network.gateway
                for name, c in (("target", sandbox.container()), ("asker", sandbox.container())):
                    stub.AttachContainer(pb.AttachContainerRequest(container_id=name, pid=c.pid, network="dnsbench"),
                                         timeout=10)
            asker = sandbox.containers[-1]
            containers = [sandbox.container() for _ in range(n)]
            quiet = [timed(tool.attach, i, c) for i, c in enumerate(containers)]
            run_concurrently(tool.detach, list(enumerate(containers)))
            seconds = max(5.0, n * 0.02)
            flood = subprocess.Popen(["nsenter", f"--net={asker.netns}", sys.executable, "-c", DNS_FLOOD, gateway,
                                      str(seconds)], stdout=subprocess.PIPE, text=True)
            time.sleep(1.0)
            busy = [timed(tool.attach, i, c) for i, c in enumerate(containers)]
            answered = int(flood.communicate(timeout=seconds + 30)[0].strip() or 0)
            tool.close()
        return {"attaches": n, "quiet": stats(quiet), "flooded": stats(busy), "answers_per_s": answered}
    finally:
        sandbox.down()


# -- report -------------------------------------------------------------------

def ratio(anchor: dict, netd: dict, key: str) -> str:
    if key == "per_s":
        return f"{netd[key] / anchor[key]:.1f}x" if anchor[key] else "-"
    return f"{anchor[key] / netd[key]:.1f}x" if netd[key] else "-"


def markdown(results: dict) -> str:
    lines = [
        f"netd benchmark, {results['date']}, {results['machine']}",
        "",
        "| scenario | tool | p50 ms | p90 ms | p99 ms | max ms | per s | anchor / netd (p50; per s: netd / anchor) "
        "| CPU ms per call | CPU steal % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario, by_tool in results["scenarios"].items():
        for phase in ("attach", "detach"):
            netd = by_tool["netd"][phase]
            for tool, r in by_tool.items():
                s = r[phase]
                if tool == "netd":
                    cmp = "1.0x"
                elif tool.startswith("netd"):  # netd through another client: no anchor
                    cmp = "-"
                else:
                    cmp = f"{ratio(s, netd, 'p50')} (per s {ratio(s, netd, 'per_s')})"
                lines.append(f"| {scenario} {phase} | {tool} | {s['p50']} | {s['p90']} | {s['p99']} | {s['max']} "
                             f"| {s['per_s']} | {cmp} | {s['cpu_ms']} | {s['steal_pct']} |")
    lost = [f"{tool} {r['first_ping_lost']} in {scenario}" for scenario, by_tool in results["scenarios"].items()
            for tool, r in by_tool.items() if r["first_ping_lost"]]
    if results.get("rounds", 1) > 1:
        lines += ["", f"Each scenario ran in {results['rounds']} rounds, the tools taking turns to go "
                      "first, so a slow phase of the machine falls on every tool alike; the "
                      "numbers pool all rounds."]
    lines += ["", "CPU ms per call: the tool's own CPU time (user and system, every thread) per call: netd's "
              "daemon process; for CNI and netavark the processes each call exec'd, with theirs. The client's "
              "side (the gRPC client, the exec) is left out for all."]
    lines += ["", "CPU steal: the share of the machine's busy CPU time, during the timed calls, in which a "
              "virtual CPU was ready to run but its hypervisor ran something else (waking an idle one "
              "counts too). It varies from run to run of the same tool, and latencies grow with it."]
    lines += ["", "Containers whose first ping to the gateway was lost after attach (stale ARP for a bridge "
              "whose MAC moved, or similar): " + (", ".join(lost) if lost else "none") + "."]
    churn = results.get("churn")
    if churn:
        lines += ["", f"netd under churn ({churn['standing']} endpoints standing; {churn['callers']} callers detach the "
                      f"oldest and attach new ones, {churn['turnover']} of each, interleaved, in "
                      f"{churn['wall_s']} s at {churn['steal_pct']}% CPU steal; first ping lost in "
                      f"{churn['first_ping_lost']}):", "",
                  "| call | p50 ms | p90 ms | p99 ms | max ms |", "|---|---|---|---|---|"]
        for kind in ("attach", "detach"):
            s = churn[kind]
            lines.append(f"| {kind} | {s['p50']} | {s['p90']} | {s['p99']} | {s['max']} |")
    scale = results.get("scale")
    if scale:
        visits = " → ".join(map(str, scale["visits"]))
        lines += ["", f"netd at scale ({scale['endpoints']} endpoints on one bridge; at each mark "
                      f"{scale['attach_at']['10']['n']} more attaches are timed, each detached again, in windows "
                      f"visiting the marks {visits}, so slow phases of the machine fall on every mark alike):", "",
                  "| measure | p50 ms | p99 ms | max ms | CPU steal % |", "|---|---|---|---|---|"]
        for mark, s in scale["attach_at"].items():
            lines.append(f"| attach at {mark} endpoints | {s['p50']} | {s['p99']} | {s['max']} | {s['steal_pct']} |")
        s = scale["list_endpoints"]
        lines.append(f"| ListEndpoints of {scale['endpoints']} | {s['p50']} | {s['p99']} | {s['max']} | |")
        rss, at = scale["rss_mib"], scale["attach_at"]
        low, high = min(at, key=int), max(at, key=int)
        growth = {q: f"{at[high][q] / at[low][q]:.2f}x" for q in ("p50", "p99")}
        lines += ["", f"From {low} to {high} endpoints, attach p50 grew {growth['p50']} and p99 {growth['p99']}."]
        lines += ["", f"All {scale['endpoints']} containers reached their gateway "
                      f"(first ping lost in {scale.get('first_ping_lost', 0)})."]
        lines += ["", f"RSS: {' / '.join(f'{v} MiB at {k}' for k, v in rss.items())}; "
                      f"start to SERVING with {scale['endpoints']} endpoints in the store: {scale['ready_ms']} ms"]
    dns = results.get("dns")
    if dns:
        lines += ["", f"netd's DNS under a flood ({dns['attaches']} sequential attaches on the default network, "
                      f"first quiet, then while a container floods a created network's resolver with queries, "
                      f"64 in flight): the resolver answered {dns['answers_per_s']} queries/s; attach p50 "
                      f"{dns['quiet']['p50']} ms quiet and {dns['flooded']['p50']} ms flooded "
                      f"(p99 {dns['quiet']['p99']} and {dns['flooded']['p99']})."]
    return "\n".join(lines) + "\n"


def main() -> int:
    if os.geteuid() != 0:
        print("make bench needs root: it creates network namespaces", file=sys.stderr)
        return 1
    remove_leftovers()
    tools = available()
    results: dict = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}",
        "rounds": ROUNDS,
        "scenarios": {},
    }
    for label, n, concurrent in ((f"sequential {SEQUENTIAL}", SEQUENTIAL, False),
                                 (f"{CLIENTS} clients {CONCURRENT}", CONCURRENT, True)):
        print(f"bench: {label}: {', '.join(t.name for t in tools)} in {ROUNDS} rounds …", flush=True)
        results["scenarios"][label] = attach_detach(tools, n, concurrent, ROUNDS)
    if CHURN:
        print(f"bench: netd under churn, {CHURN} endpoints standing …", flush=True)
        results["churn"] = netd_churn(CHURN, CHURN * 4 // 5)
    if SCALE:
        print(f"bench: netd at {SCALE} endpoints …", flush=True)
        results["scale"] = netd_at_scale(SCALE)
    if DNS_ATTACHES:
        print("bench: netd's DNS under a flood …", flush=True)
        results["dns"] = netd_dns_load(DNS_ATTACHES)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    report = markdown(results)
    (RESULTS / "latest.md").write_text(report)
    print("\n" + report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
