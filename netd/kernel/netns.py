"""Network namespaces: open one by PID or path as an fd, and get a netlink
socket inside it.

Never fork inside the daemon (helpers that fork into a netns crash next to
gRPC's threads): setns() on the calling thread instead, see socket_in.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from netd.errors import (
    ContainerNotFound,
    FailedPrecondition,
    InvalidArgument,
    KernelError,
)
from netd.model import NetnsId

CLONE_NEWNET = 0x40000000
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3), from linux/nsfs.h
# Recent kernels give the initial netns this fixed nsfs inode
# (PROC_NET_INIT_INO); /proc/1/ns/net may not be readable (PID 1 can hold
# capabilities we lack), so this is how we recognise it there.
INIT_NET_INO = 0xEFFFFFF9

_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


@dataclass
class Netns:
    fd: int
    id: NetnsId

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Netns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def id_of_fd(fd: int) -> NetnsId:
    st = os.fstat(fd)
    return NetnsId(st.st_dev, st.st_ino)


def _id_of_path(path: str) -> NetnsId | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return NetnsId(st.st_dev, st.st_ino)


@functools.cache
def protected_ids() -> dict[NetnsId, str]:
    """Namespaces netd must never wire a container into: its own and init's
    (neither changes while netd runs: it never leaves its own)."""
    own = _id_of_path("/proc/self/ns/net")
    found = {_id_of_path("/proc/1/ns/net"): "the host's initial network namespace"}
    if own is not None:
        found[NetnsId(own.dev, INIT_NET_INO)] = "the host's initial network namespace"
        found[own] = "netd's own network namespace"
    return {k: v for k, v in found.items() if k is not None}


def _open_path(path: str, field: str, not_found: str) -> int:
    # O_NONBLOCK: a FIFO at the path must not hang the call.
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
    try:
        return os.open(path, flags)
    except (FileNotFoundError, ProcessLookupError):
        raise ContainerNotFound(not_found) from None
    except OSError as e:
        if e.errno == errno.ESRCH:
            raise ContainerNotFound(not_found) from None
        raise InvalidArgument(f"{field} {path} cannot be opened: {e.strerror}") from None


def _check_is_netns(fd: int, field: str, value: object) -> None:
    """Ask nsfs what the fd is; a path string proves nothing (bind mounts, symlinks)."""
    try:
        nstype = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:
        raise InvalidArgument(f"{field} {value} is not a network namespace") from None
    if nstype != CLONE_NEWNET:
        raise InvalidArgument(f"{field} {value} is a namespace of another type, not a network namespace")


def open_netns(pid: int = 0, path: str = "") -> Netns:
    """Open a container's netns once; the fd pins it against PID reuse and exit."""
    if pid:
        field, value = "pid", pid
        fd = _open_path(f"/proc/{pid}/ns/net", "pid", f"pid {pid}: no such process")
    else:
        field, value = "netns_path", path
        fd = _open_path(path, "netns_path", f"netns_path {path} does not exist")
    try:
        _check_is_netns(fd, field, value)
        nsid = id_of_fd(fd)
        protected = protected_ids().get(nsid)
        if protected:
            raise FailedPrecondition(f"{field} {value} is in {protected}; netd never rewires a host")
    except BaseException:
        os.close(fd)
        raise
    return Netns(fd, nsid)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise KernelError(f"failed to enter network namespace: {os.strerror(err)}")


@functools.cache
def _own_fd() -> int:
    return os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def _while_in(fd: int, make: Callable[[], T]) -> T:
    """make(), run by this thread inside the netns behind fd.

    setns() moves only the calling thread, and a socket (or a /proc/sys/net
    file) stays in the netns it was opened in, so the thread steps in, makes
    it and steps back at once; no other code runs in between. (A fresh
    thread per call costs ten times more.) If stepping back ever failed,
    this thread would act in a container's netns, so netd exits instead and
    restarts clean.
    """
    own = _own_fd()
    _setns(fd)
    try:
        return make()
    finally:
        if _libc.setns(own, CLONE_NEWNET) != 0:
            os.write(2, b"netd: fatal: cannot return to its own network namespace\n")
            os._exit(70)


def socket_in(fd: int, family: int = socket.AF_NETLINK, kind: int = socket.SOCK_RAW,
              proto: int = socket.NETLINK_ROUTE) -> socket.socket:
    """A socket (by default NETLINK_ROUTE) inside the netns behind fd."""
    return _while_in(fd, lambda: socket.socket(family, kind | socket.SOCK_CLOEXEC, proto))


def write_sysctl_in(fd: int, knob: str, value: str) -> None:
    """Write /proc/sys/net/KNOB of the netns behind fd."""
    try:
        sysctl = _while_in(fd, lambda: os.open(f"/proc/sys/net/{knob}", os.O_WRONLY | os.O_CLOEXEC))
    except OSError as e:
        raise KernelError(f"failed to set {knob} in the container: {e.strerror}") from None
    try:
        os.write(sysctl, value.encode())
    finally:
        os.close(sysctl)
