"""The socket gate: who is calling?

netd accepts on the public socket itself, reads each connection's
credentials from the kernel (SO_PEERCRED) and hands the connection, with
them, to the gRPC server (netd.rpc), which logs them with each mutating call.

Under systemd the public socket can come from netd.socket (socket
activation): it then outlives netd, and calls made while netd restarts wait
in its backlog instead of finding no socket.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from netd.errors import FailedPrecondition

log = structlog.get_logger("netd")
UCRED = struct.Struct("3i")  # pid, uid, gid
SD_LISTEN_FDS_START = 3


@dataclass(frozen=True)
class Caller:
    pid: int
    uid: int
    gid: int

    def __str__(self) -> str:
        return f"uid={self.uid} pid={self.pid}"


def peer_credentials(conn: socket.socket) -> Caller:
    pid, uid, gid = UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size))
    return Caller(pid, uid, gid)


def listen_unix(path: Path, mode: int) -> socket.socket:
    """A listening socket born with `mode`: no window in which others could connect."""
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old_umask = os.umask(0o777 & ~mode)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old_umask)
    sock.listen(128)
    return sock


def inherited_listener() -> socket.socket | None:
    """The listening socket systemd passed (sd_listen_fds(3)), if any."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or os.environ.get("LISTEN_FDS") != "1":
        return None
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # not for the firewall tools netd runs
    sock = socket.socket(fileno=SD_LISTEN_FDS_START)
    sock.set_inheritable(False)
    name = sock.getsockname() if sock.family == socket.AF_UNIX else None
    if sock.type != socket.SOCK_STREAM or not isinstance(name, str) or not name:
        sock.detach()
        raise FailedPrecondition("the socket systemd passed is not a Unix stream socket on a path (ListenStream=/PATH)")
    return sock


class Gate:
    def __init__(self, public: Path, serve: Callable[[socket.socket, Caller], None],
                 listener: socket.socket | None = None) -> None:
        """Listens on `public`, or on `listener` (systemd's) when given;
        serve(connection, caller) takes each accepted connection over."""
        self._serve = serve
        self._listener = listener if listener is not None else listen_unix(public, 0o660)
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._accept_loop, name="gate", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting; connections taken over are the server's. Connections
        not accepted yet stay queued in the socket's backlog, for the next netd
        when systemd holds the socket."""
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join()
        self._listener.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _accept_loop(self) -> None:
        # Woken by a pipe, not by shutting the listener down: systemd's copy
        # of an inherited listener must keep listening.
        poller = select.poll()
        for fd in (self._listener.fileno(), self._wake_r):
            poller.register(fd, select.POLLIN)
        while True:
            ready = [fd for fd, _ in poller.poll()]
            if self._wake_r in ready:
                return
            try:
                conn, _ = self._listener.accept()
            except BlockingIOError:
                continue  # systemd's socket is non-blocking; the caller left before the accept
            except OSError as e:  # e.g. out of file descriptors: try again shortly
                log.warning("gate_accept_failed", error=str(e))
                time.sleep(0.1)
                continue
            try:
                self._serve(conn, peer_credentials(conn))
            except OSError as e:
                log.warning("gate_accept_failed", error=str(e))
                conn.close()
