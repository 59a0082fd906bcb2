"""`make demo`: netd's main job, start to finish, in a throwaway sandbox;
then two hosts in cluster mode.

A "host" netns runs netd; an "outside" netns plays the internet with a TCP
server; two `unshare --net` containers get attached (one publishing a port),
talk to the outside through NAT and to each other directly, are reached from
the outside through the published port, and are detached. Nothing touches the
machine's own network, and everything is removed at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tests.cluster import Underlay
from tests.sandbox import (
    HOST_UPLINK_ADDR,
    OUTSIDE_ADDR,
    SERVER_PORT,
    Sandbox,
    peer_seen_via,
    serve_in,
    tcp_peer_seen,
)


def step(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def show(cmd: str, output: str) -> None:
    print(f"$ {cmd}\n{output.rstrip()}", flush=True)


def main() -> int:
    if os.geteuid() != 0:
        print("make demo needs root: it creates network namespaces", file=sys.stderr)
        return 1
    started = time.monotonic()
    sandbox = Sandbox()
    try:
        step(f"sandbox {sandbox.name}: host netns {sandbox.host}, outside netns {sandbox.outside}")
        sandbox.up()
        sandbox.start_outside_server()
        print(f"outside server listening on {OUTSIDE_ADDR}:{SERVER_PORT}; host uplink is {HOST_UPLINK_ADDR}")

        step("start netd inside the host netns")
        sandbox.start_netd()
        show("netctl status", sandbox.netctl("status").stdout)

        step("two containers (unshare --net sleep), attached by PID; db publishes host port 8000")
        web, db = sandbox.container(), sandbox.container()
        for name, c, extra in (("web", web, ()), ("db", db, ("-p", f"8000:{SERVER_PORT}"))):
            argv = ("attach", name, "--pid", str(c.pid), *extra)
            show(f"netctl {' '.join(argv)}", sandbox.netctl(*argv).stdout)
        show("netctl ls", sandbox.netctl("ls").stdout)
        show("(in web) ip -br addr; ip route", web.run("ip", "-br", "addr").stdout + web.run("ip", "route").stdout)

        step("web reaches the outside server through NAT")
        seen = tcp_peer_seen(web, OUTSIDE_ADDR)
        print(f"the outside server saw the connection come from {seen} (the host's uplink address)")

        step("neighbour entries pinned both ways: no ARP between a container and its gateway")
        show("(in web) ip neigh", web.run("ip", "neigh").stdout)
        show("ip neigh show dev netd0", sandbox.in_host("ip", "neigh", "show", "dev", "netd0").stdout)

        step("web reaches db directly, with its own address")
        endpoints = {e["container_id"]: e for e in json.loads(sandbox.netctl("ls", "-o", "json").stdout)}
        db_ip = endpoints["db"]["ip_address"].split("/")[0]
        serve_in(sandbox, db)
        print(f"db's server saw the connection come from {tcp_peer_seen(web, db_ip)} (web's address)")
        show(f"(in web) ping -c1 {db_ip}", web.run("ping", "-c1", "-W2", db_ip).stdout.splitlines()[1])

        step(f"the outside reaches db through the published port {HOST_UPLINK_ADDR}:8000")
        seen = peer_seen_via(["ip", "netns", "exec", sandbox.outside], HOST_UPLINK_ADDR, 8000)
        print(f"db's server saw the connection come from {seen} (the outside's own address, DNAT only)")

        step("detach both; veths gone, addresses free")
        for name in ("web", "db"):
            show(f"netctl detach {name}", sandbox.netctl("detach", name).stdout)
        show("netctl ls", sandbox.netctl("ls").stdout)

        names_demo(sandbox)
    finally:
        step("clean up the sandbox")
        sandbox.down()
    cluster_demo()
    print(f"\ndemo finished in {time.monotonic() - started:.1f}s")
    return 0


def names_demo(sandbox: Sandbox) -> None:
    """A network created while netd runs; two containers find each other by name."""
    step("a network created through the API; two containers on it reach each other by name")
    events = subprocess.Popen([sys.executable, "-m", "netd.clients.netctl", "--socket", str(sandbox.socket),
                               "events"], stdout=subprocess.PIPE, text=True)
    show("netctl network create blue", sandbox.netctl("network", "create", "blue").stdout)
    api, client = sandbox.container(), sandbox.container()
    reply = json.loads(sandbox.netctl("attach", "api", "--pid", str(api.pid), "-n", "blue", "--alias", "backend",
                                      "-o", "json").stdout)
    sandbox.netctl("attach", "client", "--pid", str(client.pid), "-n", "blue")
    gateway = reply["gateway"]
    resolv = f"nameserver {gateway}\nsearch blue.netd\n"
    lookup = (f"printf '{resolv}' > /tmp/resolv.demo && mount --bind /tmp/resolv.demo /etc/resolv.conf && "
              "getent hosts backend")
    show("(in client, its resolv.conf pointing at the gateway) getent hosts backend",
         client.run("unshare", "--mount", "sh", "-c", lookup).stdout)
    serve_in(sandbox, api)
    print(f"api's server saw the connection from client by name come from "
          f"{client.run(sys.executable, '-c', TCP_CLIENT_BY_NAME, gateway, 'backend').stdout.strip()}")
    show("netctl network rm blue --force", sandbox.netctl("network", "rm", "blue", "--force").stdout)
    events.terminate()
    show("netctl events (what it printed meanwhile)", events.communicate(timeout=10)[0])


# Resolve NAME through the DNS server given, then connect to the echo-peer server there.
TCP_CLIENT_BY_NAME = f"""
import socket, sys, dns.resolver
r = dns.resolver.Resolver(configure=False); r.nameservers = [sys.argv[1]]
address = r.resolve(sys.argv[2], "A")[0].address
print(socket.create_connection((address, {SERVER_PORT}), timeout=3).recv(64).decode())
"""


def cluster_demo() -> None:
    """Two hosts, one etcd: each leases a subnet, and their containers talk across, by address."""
    underlay = Underlay()
    try:
        step("two hosts on an underlay, etcd on it; each netd in cluster mode (backend vxlan)")
        underlay.up()
        hosts = [underlay.host(), underlay.host()]
        for host in hosts:
            host.write_config("vxlan")
            host.start()
        show("(h1) cat netd.toml", hosts[0].config.read_text())
        show("(h1) netctl nodes", hosts[0].netctl("nodes").stdout)
        step("a container on each host; h1's reaches h2's directly, and h2's sees h1's container address")
        pods = []
        for host in hosts:
            c = host.container()
            pods.append((c, json.loads(host.netctl("attach", "pod", "--pid", str(c.pid), "-o", "json").stdout)))
        show("(h1) ip route show proto 110", hosts[0].in_host("ip", "route", "show", "proto", "110").stdout)
        serve_in(hosts[1], pods[1][0])
        target = pods[1][1]["ip_address"].split("/")[0]
        print(f"h2's container ({target}) saw the connection come from {tcp_peer_seen(pods[0][0], target)} "
              f"(h1's container: {pods[0][1]['ip_address'].split('/')[0]}, no NAT between hosts)")
    finally:
        step("clean up the hosts and etcd")
        underlay.down()


if __name__ == "__main__":
    raise SystemExit(main())
