"""Published host ports, held: a host process can take none that netd DNATs
away from it, and netd publishes none that a host process already uses.

One bound socket per port, never listening (nothing reaches it: traffic to the
port is DNATed first) and without SO_REUSEADDR, which keeps every other socket
off the port. Docker's userland proxy holds ports the same way, and proxies.
"""

from __future__ import annotations

import errno
import socket
import threading

from netd.errors import AlreadyExists, FailedPrecondition, KernelError, ResourceExhausted
from netd.model import PortMapping


class HostPorts:
    def __init__(self) -> None:
        self._held: dict[tuple[str, str], list[socket.socket]] = {}
        self._lock = threading.Lock()

    def hold(self, key: tuple[str, str], mappings: tuple[PortMapping, ...]) -> None:
        """Bind every host port of the mappings for the endpoint `key`; all or none."""
        bound: list[socket.socket] = []
        try:
            for i, m in enumerate(mappings):
                for port in range(m.host_port, m.host_port + m.count):
                    sock = _held_port(i, m, port)
                    if sock is not None:
                        bound.append(sock)
        except BaseException:
            for sock in bound:
                sock.close()
            raise
        with self._lock:
            self._held[key] = bound

    def release(self, key: tuple[str, str]) -> None:
        with self._lock:
            bound = self._held.pop(key, [])
        for sock in bound:
            sock.close()


def _held_port(i: int, m: PortMapping, port: int) -> socket.socket | None:
    """A socket bound to the port; None when host_ip is not (yet) an address
    of the host, where nothing can take the port anyway."""
    host_ip = str(m.host_ip or "0.0.0.0")
    where = f"ports[{i}] {m}: host port {host_ip}:{port}/{m.protocol}"
    kind = socket.SOCK_STREAM if m.protocol == "tcp" else socket.SOCK_DGRAM
    try:
        sock = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC)
    except OSError as e:
        raise ResourceExhausted(f"{where} cannot be held: {e.strerror}") from None
    try:
        sock.bind((host_ip, port))
        return sock
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise AlreadyExists(f"{where} is in use by a process on the host") from None
        if e.errno == errno.EADDRNOTAVAIL:
            return None
        if e.errno == errno.EACCES:
            raise FailedPrecondition(f"{where} cannot be held: netd lacks CAP_NET_BIND_SERVICE") from None
        raise KernelError(f"{where} cannot be held: {e.strerror}") from None
