"""A throwaway world for netd: a "host" netns where netd runs, an "outside"
netns behind the host's uplink, and containers as `unshare --net` processes.

Used by the integration tests, `make demo` and benchmarks. Everything it
creates carries its prefix and is removed by `down()`, which never raises.
Nothing is created in the machine's own network namespace.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "ntdt"  # every netns these helpers make starts with this
HOST_UPLINK, OUTSIDE_IF = "uplink0", "wan0"
HOST_UPLINK_ADDR, OUTSIDE_ADDR = "198.51.100.2", "198.51.100.1"
HOST_UPLINK_ADDR6, OUTSIDE_ADDR6 = "2001:db8:ff::2", "2001:db8:ff::1"
SERVER_PORT = 8080

# Answers each TCP connection, over IPv4 and IPv6, with the peer address it
# saw, then closes. Listens on IPv4 last: 0.0.0.0:PORT in `ss` means both are up.
ECHO_PEER_SERVER = f"""
import socket, threading
def listening(family, address):
    s = socket.socket(family); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((address, {SERVER_PORT})); s.listen(128)
    return s
def serve(s):
    while True:
        c, peer = s.accept()
        c.sendall(peer[0].encode()); c.close()
s6 = listening(socket.AF_INET6, "::")
threading.Thread(target=serve, args=(s6,), daemon=True).start()
serve(listening(socket.AF_INET, "0.0.0.0"))
"""

TCP_CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
print(c.recv(64).decode())
"""


def sh(*argv: str, check: bool = True, timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout, input=input)


@dataclass
class Container:
    proc: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def netns(self) -> str:
        return f"/proc/{self.pid}/ns/net"

    def run(self, *argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        return sh("nsenter", f"--net={self.netns}", *argv, check=check, timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@dataclass
class Sandbox:
    name: str = field(default_factory=lambda: f"{PREFIX}{secrets.token_hex(3)}")
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="netd-sandbox-")))
    containers: list[Container] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)
    netd_proc: subprocess.Popen | None = None
    named_netns: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"{self.name}-host"

    @property
    def outside(self) -> str:
        return f"{self.name}-out"

    @property
    def socket(self) -> Path:
        return self.workdir / "run" / "netd.sock"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    @property
    def log_path(self) -> Path:
        return self.workdir / "netd.log"

    @property
    def instance(self) -> str:
        """The netd instance id of the state dir (its mark on what it creates)."""
        return (self.state_dir / "instance").read_text().strip()

    @property
    def nft_table(self) -> str:
        return f"netd_{self.instance}"

    def iptables_chain(self, base: str) -> str:
        return f"NETD-{base}-{self.instance}"

    # -- world -----------------------------------------------------------

    def up(self) -> Sandbox:
        sh("ip", "netns", "add", self.host)
        sh("ip", "netns", "add", self.outside)
        sh("ip", "-n", self.host, "link", "add", HOST_UPLINK, "type", "veth",
           "peer", "name", OUTSIDE_IF, "netns", self.outside)
        for ns, dev, addr, addr6 in ((self.host, HOST_UPLINK, HOST_UPLINK_ADDR, HOST_UPLINK_ADDR6),
                                     (self.outside, OUTSIDE_IF, OUTSIDE_ADDR, OUTSIDE_ADDR6)):
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "-n", ns, "addr", "add", f"{addr6}/64", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.host, "route", "add", "default", "via", OUTSIDE_ADDR)
        sh("ip", "-n", self.host, "-6", "route", "add", "default", "via", OUTSIDE_ADDR6)
        return self

    def in_host(self, *argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.host, *argv, check=check, timeout=timeout)

    def in_outside(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.outside, *argv, check=check)

    def host_json(self, *argv: str) -> list:
        return json.loads(sh("ip", "-n", self.host, "-j", *argv).stdout or "[]")

    def start_outside_server(self) -> None:
        proc = subprocess.Popen(["ip", "netns", "exec", self.outside, sys.executable, "-c", ECHO_PEER_SERVER])
        self.procs.append(proc)
        wait_for(lambda: f"0.0.0.0:{SERVER_PORT}" in sh("ip", "netns", "exec", self.outside, "ss", "-ltn").stdout,
                 "outside TCP server listening")

    def container(self) -> Container:
        proc = subprocess.Popen(["unshare", "--net", "sleep", "infinity"])
        c = Container(proc)
        self.containers.append(c)
        wait_for(lambda: os.readlink(c.netns) != os.readlink("/proc/self/ns/net"), "container netns")
        return c

    def named_netns_add(self, suffix: str) -> str:
        name = f"{self.name}-{suffix}"
        sh("ip", "netns", "add", name)
        self.named_netns.append(name)
        return f"/run/netns/{name}"

    # -- netd ------------------------------------------------------------

    def start_netd(self, *extra: str, wait: bool = True, verified: bool = True) -> subprocess.Popen:
        """netd in the host netns; with `wait`, until it serves (and with
        `verified`, has verified its endpoints after start-up)."""
        argv = ["ip", "netns", "exec", self.host, sys.executable, "-m", "netd",
                "--socket", str(self.socket), "--state-dir", str(self.state_dir), "--log-format", "json",
                "--firewall-check-interval", "0.5", *extra]
        seen = self.events("verified")
        log = open(self.log_path, "a")
        self.netd_proc = subprocess.Popen(argv, stdout=log, stderr=log)
        log.close()
        if wait:
            if verified:  # SERVING, and done with its look at the kernel after start-up (garbage collection)
                ready = lambda: self.events("verified") > seen  # noqa: E731
            else:
                ready = lambda: self.netctl("status", check=False).returncode == 0  # noqa: E731
            wait_for(lambda: ready() or self.netd_proc.poll() is not None, "netd SERVING", timeout=20)
            if self.netd_proc.poll() is not None:
                raise RuntimeError(f"netd exited {self.netd_proc.returncode}:\n{self.log_path.read_text()}")
        return self.netd_proc

    def stop_netd(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        proc, self.netd_proc = self.netd_proc, None
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def netctl(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh(sys.executable, "-c", "from netd.clients.netctl import main; raise SystemExit(main())",
                  "--socket", str(self.socket), *argv, check=check)

    def events(self, name: str) -> int:
        """How many times netd logged `name` (across restarts)."""
        return sum(e.get("event") == name for e in self.netd_log())

    def netd_log(self) -> list[dict]:
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        found = []
        for line in lines:
            try:
                found.append(json.loads(line))
            except ValueError:  # not a log event, or one being written
                continue
        return found

    # -- teardown --------------------------------------------------------

    def down(self) -> None:
        """Remove everything this sandbox made. Never raises."""
        self.stop_netd(signal.SIGKILL, timeout=5)
        for c in self.containers:
            c.kill()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for ns in (*self.named_netns, self.host, self.outside):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)


def unmount_below(path: Path) -> None:
    """Lazily unmount whatever a runtime left mounted under path (deepest first)."""
    for line in reversed(Path("/proc/mounts").read_text().splitlines()):
        if line.split()[1].startswith(str(path)):
            subprocess.run(["umount", "-l", line.split()[1]], capture_output=True)


def wait_for(predicate, what: str, timeout: float = 10, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def remove_leftovers() -> None:
    """Delete every netns with our prefix (a previous run that was killed)."""
    listing = sh("ip", "netns", "list", check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(PREFIX):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def serve_in(sandbox: Sandbox, container: Container) -> None:
    """Run the echo-peer TCP server inside a container."""
    proc = subprocess.Popen(["nsenter", f"--net={container.netns}", sys.executable, "-c", ECHO_PEER_SERVER])
    sandbox.procs.append(proc)
    wait_for(lambda: f"0.0.0.0:{SERVER_PORT}" in container.run("ss", "-ltn").stdout, "container TCP server listening")


def serve_http(sandbox: Sandbox, port: int = 8081) -> str:
    """An HTTP server in the outside netns; returns the URL of its one page."""
    www = sandbox.workdir / "www"
    www.mkdir(exist_ok=True)
    (www / "index.html").write_text("hello from outside\n")
    sandbox.procs.append(subprocess.Popen(
        ["ip", "netns", "exec", sandbox.outside, sys.executable, "-m", "http.server", str(port),
         "--bind", OUTSIDE_ADDR, "--directory", str(www)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_for(lambda: f":{port}" in sh("ip", "netns", "exec", sandbox.outside, "ss", "-ltn").stdout, "HTTP server")
    return f"http://{OUTSIDE_ADDR}:{port}/index.html"


def tcp_peer_seen(container: Container, address: str, port: int = SERVER_PORT) -> str:
    """Connect from the container to an echo-peer server; the source address it saw."""
    return peer_seen_via(["nsenter", f"--net={container.netns}"], address, port)


def peer_seen_via(prefix: list[str], address: str, port: int = SERVER_PORT) -> str:
    """Connect to an echo-peer server from wherever `prefix` runs a command
    (e.g. `ip netns exec NS`); the source address it saw, "" if unreachable."""
    proc = sh(*prefix, sys.executable, "-c", TCP_CLIENT, address, str(port), check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""
