"""The tools under test, each driven the way its real callers drive it.

- netd: gRPC over its Unix socket from a Go client (bench/client), as the
  container runtimes that call it are written; also from grpcio's Python
  client, as netctl calls it;
- CNI `bridge` + `host-local`: the plugin binary exec'd per call with the CNI
  environment and the network config on stdin, masquerade on;
- netavark: `netavark setup|teardown NETNS` with Podman's JSON on stdin
  (Podman does IPAM itself and passes static addresses, so do we).

Calls run with this process's main thread inside the tool's sandbox host
netns (see bench.run.inside), so exec'd plugins act there, never on the
machine's own network.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import resource
import subprocess
import sys
import threading
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import grpc

from netd.v1 import netd_pb2 as pb
from netd.v1 import netd_pb2_grpc as pb_grpc
from tests.sandbox import Container, Sandbox

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))  # concurrent callers
GO_CLIENT = Path(__file__).resolve().parent.parent / "build" / "netd-bench-client"
CNI_BRIDGE = "/usr/lib/cni/bridge"
CNI_PATH = "/usr/lib/cni"
NETAVARK = "/usr/lib/podman/netavark"


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """User and system CPU time of this process's children that have exited
    and been waited for, with their own such children: what exec'd calls used."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class GoClient:
    """The Go client process (bench/client/main.go): one connection, and a
    pair of pipes for each of `callers` concurrent callers. A call returns
    the RPC's time in ms as the client measured it, so the pipes are not
    counted."""

    def __init__(self, socket: Path, callers: int = 1, program: Path = GO_CLIENT) -> None:
        if not program.exists():
            raise FileNotFoundError(f"{program} missing: `make bench` builds it")
        self.free: queue.LifoQueue[tuple] = queue.LifoQueue()
        theirs = []
        for _ in range(callers):
            (request_r, request_w), (answer_r, answer_w) = os.pipe(), os.pipe()
            theirs += [request_r, answer_w]
            self.free.put((os.fdopen(request_w, "w", buffering=1), os.fdopen(answer_r)))
        args = [f"{theirs[k]}:{theirs[k + 1]}" for k in range(0, len(theirs), 2)]
        try:
            self.proc = subprocess.Popen([str(program), str(socket), *args], pass_fds=theirs)
        finally:  # the child's ends are its own now, or nobody's
            for fd in theirs:
                os.close(fd)

    def call(self, *words: str) -> float:
        pipes = self.free.get()
        requests, answers = pipes
        try:
            requests.write(" ".join(words) + "\n")
            requests.flush()
            line = answers.readline()
        except BrokenPipeError:
            line = ""
        finally:
            self.free.put(pipes)
        if not line:
            raise RuntimeError(f"the Go client exited ({self.proc.wait()})")
        outcome, detail = line.rstrip("\n").split(" ", 1)
        if outcome != "ok":
            raise RuntimeError(f"netd {' '.join(words)}: {detail}")
        return int(detail) / 1000

    def close(self) -> None:
        while not self.free.empty():
            requests, answers = self.free.get()
            with contextlib.suppress(BrokenPipeError):
                requests.close()
            answers.close()
        self.proc.wait(timeout=30)


def start_netd(sandbox: Sandbox) -> None:
    # the production default check interval (the test sandbox uses a faster one)
    # (not waiting for the "verified" event: `make bench-ab` runs builds older than it)
    sandbox.start_netd("--firewall", "nftables", "--firewall-check-interval", "2", verified=False)


class NetdTool:
    """netd through the Go client, started and connected outside the timings.
    attach, detach and list_endpoints return the time the client measured
    (see bench.run.timed)."""

    name = "netd"
    bridge = "netd0"
    subnet = IPv4Network("10.89.0.0/16")

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        start_netd(sandbox)
        self.client = GoClient(sandbox.socket, CLIENTS)
        self.client.call("list")

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.sandbox.netd_proc.pid)

    def attach(self, i: int, c: Container) -> float:
        return self.client.call("attach", f"c{i}", str(c.pid))

    def detach(self, i: int, c: Container) -> float:
        return self.client.call("detach", f"c{i}")

    def list_endpoints(self) -> float:
        return self.client.call("list")

    def close(self) -> None:
        self.client.close()


class NetdPythonTool(NetdTool):
    """netd through grpcio's Python client, as netctl calls it; timed by the
    bench around each call."""

    name = "netd (Python client)"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        start_netd(sandbox)
        self.channel = grpc.insecure_channel(f"unix:{sandbox.socket}")
        self.stub = pb_grpc.NetdStub(self.channel)
        self.stub.ListEndpoints(pb.ListEndpointsRequest())  # connect outside the timings

    def attach(self, i: int, c: Container) -> None:
        self.stub.AttachContainer(pb.AttachContainerRequest(container_id=f"c{i}", pid=c.pid), timeout=60)

    def detach(self, i: int, c: Container) -> None:
        self.stub.DetachContainer(pb.DetachContainerRequest(container_id=f"c{i}"), timeout=60)

    def list_endpoints(self) -> None:
        self.stub.ListEndpoints(pb.ListEndpointsRequest(), timeout=60)

    def close(self) -> None:
        self.channel.close()


class ExecTool:
    """A tool exec'd once per call: `commands` names its attach and detach."""

    commands: tuple[str, str]
    cpu_seconds = staticmethod(children_cpu_seconds)

    def _call(self, command: str, i: int, c: Container) -> None:
        raise NotImplementedError

    def attach(self, i: int, c: Container) -> None:
        self._call(self.commands[0], i, c)

    def detach(self, i: int, c: Container) -> None:
        self._call(self.commands[1], i, c)

    def close(self) -> None:
        pass


class CniTool(ExecTool):
    name = "cni-bridge"
    commands = ("ADD", "DEL")
    bridge = "cni0"
    subnet = IPv4Network("10.88.0.0/16")

    def __init__(self, sandbox: Sandbox) -> None:
        self.config = json.dumps({
            "cniVersion": "1.0.0", "name": "bench", "type": "bridge", "bridge": self.bridge,
            "isGateway": True, "ipMasq": True,
            "ipam": {"type": "host-local", "subnet": str(self.subnet), "routes": [{"dst": "0.0.0.0/0"}],
                     "dataDir": str(sandbox.workdir / "cni-ipam")},
        })

    def _call(self, command: str, i: int, c: Container) -> None:
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": f"c{i}", "CNI_NETNS": c.netns, "CNI_IFNAME": "eth0",
               "CNI_PATH": CNI_PATH, "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        result = subprocess.run([CNI_BRIDGE], input=self.config, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"CNI {command} c{i}: {result.stdout}{result.stderr}")


class NetavarkTool(ExecTool):
    name = "netavark"
    commands = ("setup", "teardown")
    bridge = "podman0"
    subnet = IPv4Network("10.77.0.0/16")

    def __init__(self, sandbox: Sandbox) -> None:
        self.config_dir = str(sandbox.workdir / "netavark")
        self.env = dict(os.environ, NETAVARK_FW="iptables")
        # Podman serialises netavark calls with its network lock; parallel
        # netavark runs race on the bridge and firewall, so do as Podman does.
        self.lock = threading.Lock()

    def _options(self, i: int) -> str:
        ip = IPv4Address(int(self.subnet.network_address) + 2 + i)
        return json.dumps({
            "container_id": f"c{i}", "container_name": f"c{i}",
            "networks": {"bench": {"static_ips": [str(ip)], "interface_name": "eth0"}},
            "network_info": {"bench": {
                "name": "bench", "id": "b" * 64, "driver": "bridge", "network_interface": self.bridge,
                "subnets": [{"gateway": str(IPv4Address(int(self.subnet.network_address) + 1)),
                             "subnet": str(self.subnet)}],
                "ipv6_enabled": False, "internal": False, "dns_enabled": False,
                "ipam_options": {"driver": "host-local"},
            }},
        })

    def _call(self, command: str, i: int, c: Container) -> None:
        with self.lock:
            result = subprocess.run([NETAVARK, "--config", self.config_dir, command, c.netns],
                                    input=self._options(i), env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"netavark {command} c{i}: {result.stdout}{result.stderr}")


def available() -> list[type]:
    tools: list[type] = [NetdTool, NetdPythonTool]
    for tool, binary in ((CniTool, CNI_BRIDGE), (NetavarkTool, NETAVARK)):
        if os.path.exists(binary):
            tools.append(tool)
        else:
            print(f"bench: {binary} missing, skipping {tool.name}", file=sys.stderr)
    return tools


