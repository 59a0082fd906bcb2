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

    def hold(self, key: tuple[str, str], mappings: tuple[PortMapping, ...], dual_stack: bool = False) -> None:
        """Bind every host port of the mappings for the endpoint `key`, IPv6
        ones too when it has an IPv6 address; all or none."""
        bound: list[socket.socket] = []
        try:
            for i, m in enumerate(mappings):
                for version in m.versions(dual_stack):
                    family = socket.AF_INET if version == 4 else socket.AF_INET6
                    for port in m.host_ports:
                        sock = _held_port(i, m, family, port)
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


def _held_port(i: int, m: PortMapping, family: socket.AddressFamily, port: int) -> socket.socket | None:
    """A socket bound to the port; None when host_ip is not (yet) an address
    of the host, where nothing can take the port anyway, or the host has no IPv6."""
    host_ip = str(m.only_address or ("0.0.0.0" if family == socket.AF_INET else "::"))
    shown = f"[{host_ip}]" if family == socket.AF_INET6 else host_ip
    where = f"ports[{i}] {m}: host port {shown}:{port}/{m.protocol}"
    kind = socket.SOCK_STREAM if m.protocol == "tcp" else socket.SOCK_DGRAM
    try:
        sock = socket.socket(family, kind | socket.SOCK_CLOEXEC)
    except OSError as e:
        if e.errno == errno.EAFNOSUPPORT:
            return None
        raise ResourceExhausted(f"{where} cannot be held: {e.strerror}") from None
    try:
        if family == socket.AF_INET6:
            # [::] would otherwise hold the IPv4 port too, which the AF_INET socket does.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
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
