"""Several hosts on one machine for netd's cluster mode: an "underlay"
netns (two bridged subnets, routed between each other, where etcd and an
outside echo server run) and one netns per host, each with its own netd,
socket, state dir and config, containers as `unshare --net` processes.

Used by tests/integration/test_cluster.py and `make demo`. Everything is
prefixed like tests/sandbox.py's and removed by down(), which never raises.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from tests.sandbox import ECHO_PEER_SERVER, HOST_UPLINK, PREFIX, SERVER_PORT, Sandbox, sh, wait_for

# Two underlay subnets: hosts on the second reach the first only through the underlay's routing.
SUBNETS = ("192.168.77", "192.168.78")


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else str(value)


@dataclass
class Host(Sandbox):
    """A host of the cluster: Sandbox's host netns, its uplink on an underlay subnet."""

    index: int = 1
    side: int = 0  # which underlay subnet
    underlay: Underlay | None = None

    @property
    def public_ip(self) -> str:
        return f"{SUBNETS[self.side]}.{10 + self.index}"

    @property
    def config(self) -> Path:
        return self.workdir / "netd.toml"

    def up(self) -> Host:
        ul = self.underlay
        sh("ip", "netns", "add", self.host)
        port = f"ulh{self.index}"
        sh("ip", "-n", self.host, "link", "add", HOST_UPLINK, "type", "veth", "peer", "name", port, "netns", ul.netns)
        sh("ip", "-n", ul.netns, "link", "set", port, "master", f"ul{self.side}", "up")
        sh("ip", "-n", self.host, "addr", "add", f"{self.public_ip}/24", "dev", HOST_UPLINK)
        sh("ip", "-n", self.host, "link", "set", HOST_UPLINK, "up")
        sh("ip", "-n", self.host, "link", "set", "lo", "up")
        sh("ip", "-n", self.host, "route", "add", "default", "via", f"{SUBNETS[self.side]}.1")
        return self

    def write_config(self, backend: str, network: str = "10.244.0.0/16", **extra: object) -> None:
        lines = [f"{k} = {toml_value(v)}" for k, v in extra.items()]
        self.config.write_text(textwrap.dedent(f"""\
            [cluster]
            etcd_endpoints = ["{self.underlay.etcd_url}"]
            etcd_prefix = "{self.underlay.prefix}"
            network = "{network}"
            backend = "{backend}"
            node_name = "h{self.index}"
            lease_ttl = {self.underlay.lease_ttl}
            """) + "\n".join(lines) + "\n")

    def start(self, *extra: str, wait: bool = True) -> subprocess.Popen:
        return self.start_netd("--config", str(self.config), *extra, wait=wait)

    def routes(self) -> dict[str, dict]:
        """netd's routes to the other hosts' subnets: dst → route. (A dump
        the kernel interrupts, because netd changed a route meanwhile, is asked again.)"""
        for _ in range(5):
            listing = sh("ip", "-n", self.host, "-j", "route", "show", "proto", "110", check=False)
            if listing.returncode == 0:
                return {r["dst"]: r for r in json.loads(listing.stdout or "[]")}
        raise AssertionError(f"ip route show failed: {listing.stderr}")


@dataclass
class Underlay:
    """The network between the hosts, with etcd and an outside server on it."""

    name: str = field(default_factory=lambda: f"{PREFIX}{random.randbytes(3).hex()}")
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="netd-cluster-")))
    hosts: list[Host] = field(default_factory=list)
    etcd_port: int = field(default_factory=lambda: random.randint(20000, 29999))
    etcd: subprocess.Popen | None = None
    server: subprocess.Popen | None = None
    prefix: str = "/netd"
    lease_ttl: int = 6

    @property
    def netns(self) -> str:
        return f"{self.name}-ul"

    @property
    def etcd_url(self) -> str:
        return f"http://{SUBNETS[0]}.1:{self.etcd_port}"

    @property
    def outside_ip(self) -> str:
        return f"{SUBNETS[0]}.1"

    def up(self) -> Underlay:
        sh("ip", "netns", "add", self.netns)
        for side, subnet in enumerate(SUBNETS):
            sh("ip", "-n", self.netns, "link", "add", f"ul{side}", "type", "bridge")
            sh("ip", "-n", self.netns, "addr", "add", f"{subnet}.1/24", "dev", f"ul{side}")
            sh("ip", "-n", self.netns, "link", "set", f"ul{side}", "up")
        sh("ip", "-n", self.netns, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", self.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.start_etcd()
        self.server = subprocess.Popen(["ip", "netns", "exec", self.netns, "python3", "-c", ECHO_PEER_SERVER])
        wait_for(lambda: f"0.0.0.0:{SERVER_PORT}" in sh("ip", "netns", "exec", self.netns, "ss", "-ltn").stdout,
                 "outside echo server")
        return self

    def start_etcd(self) -> None:
        peer = self.etcd_port + 1
        self.etcd = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "etcd", "--name", "ul", "--data-dir", str(self.workdir / "etcd"),
             "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
             "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls",
             f"http://127.0.0.1:{peer}", "--initial-cluster", f"ul=http://127.0.0.1:{peer}"],
            stdout=subprocess.DEVNULL, stderr=(self.workdir / "etcd.log").open("a"))
        probe = f"import urllib.request; urllib.request.urlopen('{self.etcd_url}/health', timeout=1)"
        wait_for(lambda: sh("ip", "netns", "exec", self.netns, "python3", "-c", probe, check=False).returncode == 0,
                 "etcd healthy", timeout=30, interval=0.2)

    def stop_etcd(self) -> None:
        if self.etcd and self.etcd.poll() is None:
            self.etcd.send_signal(signal.SIGTERM)
            self.etcd.wait(20)

    def host(self, side: int = 0) -> Host:
        host = Host(name=f"{self.name}{len(self.hosts) + 1}", index=len(self.hosts) + 1, side=side, underlay=self)
        self.hosts.append(host)
        return host.up()

    def down(self) -> None:
        for host in self.hosts:
            host.down()
        for proc in (self.etcd, self.server):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)
