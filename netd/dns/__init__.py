"""netd's DNS: each network with `dns` on gets a resolver on its gateway
address, which answers its containers' names and forwards the rest. The
answering runs in a process of its own (worker.py); this side keeps what it
should serve and tells it, and starts it again (with all of it) if it dies."""

from __future__ import annotations

import json
import socket
import sys
import threading

import dns.resolver
import structlog

from netd import runner
from netd.errors import InternalError
from netd.model import Endpoint, NetworkConfig

log = structlog.get_logger("netd")
REPLY_TIMEOUT = 5.0


def host_resolvers() -> list[str]:
    """The host's upstream resolvers, from its /etc/resolv.conf (read by dnspython)."""
    try:
        return list(dns.resolver.Resolver().nameservers)
    except dns.resolver.NoResolverConfiguration:
        return []


def names_of(endpoint: Endpoint) -> list[str]:
    return [n for n in (endpoint.name, *endpoint.aliases) if n]


class DnsError(InternalError):
    pass


class Dns:
    def __init__(self, upstreams: list[str]) -> None:
        self.upstreams = upstreams
        self._lock = threading.Lock()
        self._served: dict[str, NetworkConfig] = {}
        self._records: dict[tuple[str, str], dict] = {}  # (network, container id) → the "set" message
        self._proc = None
        self._control: socket.socket | None = None

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = runner.spawn([sys.executable, "-m", "netd.dns.worker", str(theirs.fileno())],
                                      pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        ours.settimeout(REPLY_TIMEOUT)
        self._control = ours
        self._send({"op": "upstreams", "servers": self.upstreams})

    def _send(self, message: dict) -> None:
        self._control.send(json.dumps(message).encode())
        reply = json.loads(self._control.recv(1 << 16))
        if "error" in reply:
            raise DnsError(f"failed to {message['op']} DNS of network {message.get('network', '')}: {reply['error']}")

    def _call(self, message: dict) -> None:
        """Tell the worker; if it is gone, start it again and tell it
        everything (the message's change included: callers record it first)."""
        with self._lock:
            try:
                if self._control is None:
                    raise OSError("not started")
                self._send(message)
            except (OSError, ValueError) as e:
                if self._proc is not None:
                    log.error("dns_restarted", reason=str(e))
                self._restart()

    def _restart(self) -> None:
        self.close()
        self._start()
        for net in self._served.values():
            self._send(self._serve_message(net))
        for message in self._records.values():
            self._send(message)

    @staticmethod
    def _serve_message(net: NetworkConfig) -> dict:
        return {"op": "serve", "network": net.name, "addresses": [str(a) for a in net.nameservers],
                "search": net.search_domain}

    def serve(self, net: NetworkConfig) -> None:
        self._served[net.name] = net
        self._call(self._serve_message(net))

    def stop(self, network: str) -> None:
        self._served.pop(network, None)
        for key in [k for k in self._records if k[0] == network]:
            del self._records[key]
        self._call({"op": "stop", "network": network})

    def add(self, endpoint: Endpoint) -> None:
        """The endpoint's names answer from now on (before its attach returns)."""
        message = {"op": "set", "network": endpoint.network, "key": endpoint.container_id,
                   "names": names_of(endpoint), "addresses": [str(a.ip) for a in (endpoint.address, endpoint.address6) if a]}
        self._records[endpoint.key] = message
        self._call(message)

    def remove(self, endpoint: Endpoint) -> None:
        if self._records.pop(endpoint.key, None) is not None:
            self._call({"op": "unset", "network": endpoint.network, "key": endpoint.container_id})

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
