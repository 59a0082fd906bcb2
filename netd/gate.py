"""The socket gate: who is calling?

gRPC's Python server exposes neither a connection's fd nor its SO_PEERCRED,
so netd accepts on the public socket itself, reads the caller's credentials
from the kernel, and relays the bytes to gRPC's private socket (inside the
0700 state dir, so only root reaches it directly). The relay's upstream
socket is bound to an abstract name that gRPC reports as the call's peer;
`caller()` turns that name back into the credentials.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("netd")
UCRED = struct.Struct("3i")  # pid, uid, gid
CHUNK = 256 * 1024


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
    def __init__(self, public: Path, private: Path) -> None:
        self.public, self.private = public, private
        self._listener = listen_unix(public, 0o660)
        self._prefix = f"netd-gate-{os.getpid()}-"
        self._serial = itertools.count(1)
        self._callers: dict[str, Caller] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._accept_loop, name="gate", daemon=True).start()

    def stop(self) -> None:
        """Stop accepting; relayed connections finish on their own."""
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()

    def caller(self, peer: str) -> Caller | None:
        """Credentials behind a gRPC peer string such as 'unix-abstract:netd-gate-…'."""
        with self._lock:
            return self._callers.get(peer.removeprefix("unix-abstract:"))

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # stopped
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
