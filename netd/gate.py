"""The socket gate: who is calling?

gRPC's Python server exposes neither a connection's fd nor its SO_PEERCRED,
so netd accepts on the public socket itself, reads the caller's credentials
from the kernel, and relays the bytes to gRPC's private socket (inside the
0700 state dir, so only root reaches it directly). The relay's upstream
socket is bound to an abstract name that gRPC reports as the call's peer;
`caller()` turns that name back into the credentials.

Under systemd the public socket can come from netd.socket (socket
activation): it then outlives netd, and calls made while netd restarts wait
in its backlog instead of finding no socket.
"""

from __future__ import annotations

import itertools
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from netd.errors import FailedPrecondition

log = structlog.get_logger("netd")
UCRED = struct.Struct("3i")  # pid, uid, gid
CHUNK = 256 * 1024
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


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(CHUNK):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Gate:
    def __init__(self, public: Path, private: Path, listener: socket.socket | None = None) -> None:
        """Listens on `public`, or on `listener` (systemd's) when given."""
        self.private = private
        self._listener = listener if listener is not None else listen_unix(public, 0o660)
        self._prefix = f"netd-gate-{os.getpid()}-"
        self._serial = itertools.count(1)
        self._callers: dict[str, Caller] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._accept_loop, name="gate", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting; relayed connections finish on their own. Connections
        not accepted yet stay queued in the socket's backlog, for the next netd
        when systemd holds the socket."""
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join()
        self._listener.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def caller(self, peer: str) -> Caller | None:
        """Credentials behind a gRPC peer string such as 'unix-abstract:netd-gate-…'."""
        with self._lock:
            return self._callers.get(peer.removeprefix("unix-abstract:"))

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
                self._relay(conn)
            except OSError as e:
                log.warning("gate_relay_failed", error=str(e))
                conn.close()

    def _relay(self, conn: socket.socket) -> None:
        who = peer_credentials(conn)
        name = f"{self._prefix}{next(self._serial)}"
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            upstream.bind("\0" + name)
            upstream.connect(str(self.private))
        except OSError:
            upstream.close()
            raise
        with self._lock:
            self._callers[name] = who
        for sock in (conn, upstream):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHUNK)
        down = threading.Thread(target=_pump, args=(upstream, conn), daemon=True)
        down.start()

        def up() -> None:
            _pump(conn, upstream)
            down.join()
            with self._lock:
                self._callers.pop(name, None)
            conn.close()
            upstream.close()

        threading.Thread(target=up, name=f"gate-{name}", daemon=True).start()
