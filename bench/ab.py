"""Two builds of netd side by side: `make bench-ab A=REV [B=REV]`.

On a shared VM, CPU steal swings between a few percent and 40% within
minutes, so comparing one `make bench` with a later one mostly measures the
machine. Here each build (a git revision, or the working tree when B is not
given) runs in its own sandbox, and the attaches alternate between the two
call by call, the order flipping each time: slow phases fall on both alike.
Prints a table; writes nothing under bench/results.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.run import ToolRun, cpu_ticks, inside, stats, steal_share, timed
from bench.tools import NetdTool
from tests.sandbox import remove_leftovers

ROOT = Path(__file__).resolve().parent.parent
ATTACHES = int(os.environ.get("AB_ATTACHES", "300"))


def turns(i: int) -> tuple[int, int]:
    """Which build goes first for the i-th pair of attaches."""
    return (0, 1) if i % 2 == 0 else (1, 0)


@contextmanager
def source_tree(rev: str):
    """The netd sources of a git revision (a throwaway worktree), or the working tree for ""."""
    if not rev:
        yield ROOT
        return
    tree = Path(tempfile.mkdtemp(prefix="netd-ab-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), rev], check=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


@contextmanager
def netd_from(tree: Path):
    """Start netd from `tree`: `python -m` puts the working directory first on the path."""
    old = Path.cwd()
    os.chdir(tree)
    try:
        found = subprocess.run([sys.executable, "-c", "import netd; print(netd.__file__)"],
                               capture_output=True, text=True, check=True).stdout.strip()
        if not found.startswith(str(tree)):
            raise RuntimeError(f"netd from {tree} imports {found} instead")
        yield
    finally:
        os.chdir(old)


def report(labels: list[str], results: list[dict], steal: float) -> str:
    lines = [f"{ATTACHES} sequential attaches per build, alternating call by call; CPU steal {steal}%", "",
             "| build | p50 ms | p90 ms | p99 ms | max ms | netd CPU ms per attach |", "|---|---|---|---|---|---|"]
    for label, r in zip(labels, results):
        lines.append(f"| {label} | {r['p50']} | {r['p90']} | {r['p99']} | {r['max']} | {r['cpu_ms']} |")
    a, b = results
    lines += ["", f"B / A: p50 {b['p50'] / a['p50']:.3f}, p99 {b['p99'] / a['p99']:.3f}, "
                  f"CPU {b['cpu_ms'] / a['cpu_ms']:.3f}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("make bench-ab needs root: it creates network namespaces", file=sys.stderr)
        return 1
    if not argv or len(argv) > 2:
        print("usage: python -m bench.ab REV_A [REV_B]  (B: the working tree)", file=sys.stderr)
        return 2
    revs = [argv[0], argv[1] if len(argv) > 1 else ""]
    labels = [f"A {revs[0]}", f"B {revs[1] or 'working tree'}"]
    remove_leftovers()
    with ExitStack() as stack:
        runs: list[ToolRun] = []
        for rev in revs:
            tree = stack.enter_context(source_tree(rev))
            with netd_from(tree):
                runs.append(ToolRun(NetdTool, ATTACHES, concurrent=False))
            stack.callback(runs[-1].close)
        latencies: list[list[float]] = [[], []]
        used = [run.tool.cpu_seconds() for run in runs]
        busy, stolen = cpu_ticks()
        for i in range(ATTACHES):
            for k in turns(i):
                with inside(runs[k].sandbox.host):
                    latencies[k].append(timed(runs[k].tool.attach, i, runs[k].containers[i]))
        busy_now, stolen_now = cpu_ticks()
        results = [stats(latencies[k]) | {"cpu_ms": round((run.tool.cpu_seconds() - used[k]) * 1000 / ATTACHES, 2)}
                   for k, run in enumerate(runs)]
    print(report(labels, results, steal_share(busy_now - busy, stolen_now - stolen)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
