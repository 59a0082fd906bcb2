"""HTTP/2 as a gRPC server speaks it, without I/O: bytes in, events out;
answers in, bytes out. One Connection per client connection; the caller
owns the socket and serialises access (netd.wire).

Only what gRPC uses: no server push, no priorities (parsed and ignored),
header blocks decoded by hpack and encoded as literals that never touch
the dynamic table (answers carry a handful of short headers). Both flow
control windows are honoured when sending; receiving, netd grants a 1 MiB
window per stream and on the connection and tops it up as it reads.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS = 0x1, 0x3
SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE = 0x4, 0x5
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR = 0x0, 0x1, 0x3, 0x6
REFUSED_STREAM, COMPRESSION_ERROR = 0x7, 0x9

FRAME_HEADER = struct.Struct(">HBBBI")  # length (high 16, low 8 bits), type, flags, stream id
DEFAULT_WINDOW = 65535
DEFAULT_MAX_FRAME = 16384
MAX_WINDOW = 2**31 - 1
RECEIVE_WINDOW = 1 << 20  # granted per stream and on the connection
MAX_STREAMS = 1024
MAX_HEADER_BLOCK = 64 * 1024
GRPC_PREFIX = struct.Struct(">BI")  # compressed flag, length


class ProtocolError(Exception):
    """The peer broke the protocol: the connection ends with GOAWAY(code)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Call:
    """A new stream: the request's headers (pseudo-headers included)."""

    stream_id: int
    headers: dict[str, str]


@dataclass(frozen=True)
class Message:
    """One whole gRPC message (the length prefix removed)."""

    stream_id: int
    data: bytes
    compressed: bool


@dataclass(frozen=True)
class HalfClosed:
    """The client sent all its messages."""

    stream_id: int


@dataclass(frozen=True)
class Cancelled:
    """The client reset the stream."""

    stream_id: int


@dataclass
class _Stream:
    send_window: int
    received: bytearray = field(default_factory=bytearray)
    unacknowledged: int = 0  # bytes read since our last WINDOW_UPDATE for it
    remote_open: bool = True
    headers_sent: bool = False
    pending: deque = field(default_factory=deque)  # bytes of DATA, then the trailers' header block
    trailers: bytes | None = None


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return FRAME_HEADER.pack(n >> 8, n & 0xFF, kind, flags, stream_id) + payload


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    """HPACK's integer: `first` holds the flag bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name: bytes, value: bytes) -> bytes:
    """A header as a literal never indexed (0x00 form), no Huffman coding."""
    return b"\x00" + _integer(len(name), 7, 0) + name + _integer(len(value), 7, 0) + value


# ":status: 200" is static entry 8; content-type a literal naming static entry 31.
RESPONSE_HEADERS = b"\x88" + _integer(31, 4, 0) + _integer(16, 7, 0) + b"application/grpc"


def percent_encode(text: str) -> bytes:
    """grpc-message's encoding: printable ASCII but '%' as is, the rest %XX of its UTF-8."""
    return b"".join(bytes([b]) if 0x20 <= b <= 0x7E and b != 0x25 else b"%%%02X" % b for b in text.encode())


def status_block(code: int, message: str, headers_first: bool) -> bytes:
    """The trailers (with the response headers when none were sent: "trailers-only")."""
    block = RESPONSE_HEADERS if headers_first else b""
    block += literal(b"grpc-status", str(code).encode())
    if message:
        block += literal(b"grpc-message", percent_encode(message))
    return block


class Connection:
    """A server's side of one HTTP/2 connection carrying gRPC calls."""

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self._buffer = bytearray()
        self._preface_seen = False
        self._decoder = hpack.Decoder()
        self._decoder.max_header_list_size = MAX_HEADER_BLOCK
        self._streams: dict[int, _Stream] = {}
        self._sending: dict[int, _Stream] = {}  # streams with DATA or trailers queued
        self._last_stream = 0
        self._headers: tuple[int, int, bytearray] | None = None  # stream, flags, block so far
        self._out: list[bytes] = [
            frame(SETTINGS, 0, 0, struct.pack(">HIHI", SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS,
                                              SETTINGS_INITIAL_WINDOW_SIZE, RECEIVE_WINDOW)),
            frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", RECEIVE_WINDOW - DEFAULT_WINDOW)),
        ]
        self._send_window = DEFAULT_WINDOW
        self._peer_initial_window = DEFAULT_WINDOW
        self._peer_max_frame = DEFAULT_MAX_FRAME
        self._unacknowledged = 0  # connection-level bytes read since our last WINDOW_UPDATE
        self.going_away = False
        self.closed = False

    # -- receiving -------------------------------------------------------

    def receive(self, data: bytes) -> list:
        """Events for the bytes read; raises ProtocolError on a protocol
        error (send what data_to_send() holds, the GOAWAY, then close)."""
        self._buffer += data
        events: list = []
        try:
            if not self._preface_seen:
                if len(self._buffer) < len(PREFACE):
                    if not PREFACE.startswith(self._buffer):
                        raise ProtocolError(PROTOCOL_ERROR, "not an HTTP/2 client preface")
                    return events
                if self._buffer[:len(PREFACE)] != PREFACE:
                    raise ProtocolError(PROTOCOL_ERROR, "not an HTTP/2 client preface")
                del self._buffer[:len(PREFACE)]
                self._preface_seen = True
            buffer, offset = self._buffer, 0
            while len(buffer) - offset >= 9:
                high, low, kind, flags, stream_id = FRAME_HEADER.unpack_from(buffer, offset)
                length = high << 8 | low
                if length > DEFAULT_MAX_FRAME:
                    raise ProtocolError(FRAME_SIZE_ERROR, f"frame of {length} bytes")
                if len(buffer) - offset < 9 + length:
                    break
                payload = bytes(buffer[offset + 9: offset + 9 + length])
                offset += 9 + length
                self._frame(kind, flags, stream_id & 0x7FFFFFFF, payload, events)
            del buffer[:offset]
        except ProtocolError as e:
            self.close(e.code)
            raise
        return events

    def _frame(self, kind: int, flags: int, stream_id: int, payload: bytes, events: list) -> None:
        if self._headers is not None and kind != CONTINUATION:
            raise ProtocolError(PROTOCOL_ERROR, "header block interrupted")
        if kind == DATA:
            self._data(flags, stream_id, payload, events)
        elif kind == HEADERS:
            if flags & PADDED:
                payload = _unpad(payload)
            if flags & PRIORITY_FLAG:
                payload = payload[5:]
            self._headers = (stream_id, flags, bytearray(payload))
            if flags & END_HEADERS:
                self._end_headers(events)
        elif kind == CONTINUATION:
            if self._headers is None or self._headers[0] != stream_id:
                raise ProtocolError(PROTOCOL_ERROR, "CONTINUATION without HEADERS")
            self._headers[2].extend(payload)
            if len(self._headers[2]) > MAX_HEADER_BLOCK:
                raise ProtocolError(PROTOCOL_ERROR, "header block too large")
            if flags & END_HEADERS:
                self._end_headers(events)
        elif kind == SETTINGS:
            if not flags & ACK:
                self._settings(payload)
                self._out.append(frame(SETTINGS, ACK, 0))
        elif kind == PING:
            if not flags & ACK:
                self._out.append(frame(PING, ACK, 0, payload))
        elif kind == WINDOW_UPDATE:
            self._window_update(stream_id, payload)
        elif kind == RST_STREAM:
            if self._streams.pop(stream_id, None) is not None:
                events.append(Cancelled(stream_id))
        elif kind == GOAWAY:
            self.going_away = True
        elif kind == PUSH_PROMISE:
            raise ProtocolError(PROTOCOL_ERROR, "PUSH_PROMISE from a client")
        # PRIORITY and unknown frame types are ignored, as RFC 9113 asks.

    def _end_headers(self, events: list) -> None:
        stream_id, flags, block = self._headers
        self._headers = None
        try:
            fields = self._decoder.decode(bytes(block), raw=True)
        except hpack.HPACKError as e:
            raise ProtocolError(COMPRESSION_ERROR, f"header block: {e}") from None
        stream = self._streams.get(stream_id)
        if stream is not None:  # trailers from the client
            if flags & END_STREAM:
                self._half_close(stream_id, stream, events)
            return
        if stream_id <= self._last_stream:
            return  # a stream already over (the client's trailers crossing our reset)
        if stream_id % 2 == 0:
            raise ProtocolError(PROTOCOL_ERROR, f"stream {stream_id} opened by the client")
        self._last_stream = stream_id
        if self.going_away or len(self._streams) >= MAX_STREAMS:
            self._out.append(frame(RST_STREAM, 0, stream_id, struct.pack(">I", REFUSED_STREAM)))
            return
        stream = self._streams[stream_id] = _Stream(self._peer_initial_window)
        events.append(Call(stream_id, {k.decode("latin-1"): v.decode("latin-1") for k, v in fields}))
        if flags & END_STREAM:
            self._half_close(stream_id, stream, events)

    def _data(self, flags: int, stream_id: int, payload: bytes, events: list) -> None:
        flow = len(payload)  # padding counts against the windows too
        if flags & PADDED:
            payload = _unpad(payload)
        self._unacknowledged += flow
        if self._unacknowledged >= RECEIVE_WINDOW // 2:
            self._out.append(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", self._unacknowledged)))
            self._unacknowledged = 0
        stream = self._streams.get(stream_id)
        if stream is None or not stream.remote_open:
            return  # over on our side: its data is read and dropped
        stream.received += payload
        stream.unacknowledged += flow
        while len(stream.received) >= 5:
            compressed, length = GRPC_PREFIX.unpack_from(stream.received)
            if length > self.max_message:
                self.send_status(stream_id, 8, f"message of {length} bytes, more than the {self.max_message} allowed")
                return
            if len(stream.received) < 5 + length:
                break
            events.append(Message(stream_id, bytes(stream.received[5:5 + length]), bool(compressed)))
            del stream.received[:5 + length]
        if flags & END_STREAM:
            self._half_close(stream_id, stream, events)
        elif stream.unacknowledged >= RECEIVE_WINDOW // 2:
            self._out.append(frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", stream.unacknowledged)))
            stream.unacknowledged = 0

    def _half_close(self, stream_id: int, stream: _Stream, events: list) -> None:
        stream.remote_open = False
        events.append(HalfClosed(stream_id))
        self._forget_if_done(stream_id, stream)

    def _settings(self, payload: bytes) -> None:
        if len(payload) % 6:
            raise ProtocolError(FRAME_SIZE_ERROR, "SETTINGS of a length not a multiple of 6")
        for offset in range(0, len(payload), 6):
            key, value = struct.unpack_from(">HI", payload, offset)
            if key == SETTINGS_INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise ProtocolError(FLOW_CONTROL_ERROR, "initial window too large")
                delta, self._peer_initial_window = value - self._peer_initial_window, value
                for stream in self._streams.values():
                    stream.send_window += delta
            elif key == SETTINGS_MAX_FRAME_SIZE:
                if not DEFAULT_MAX_FRAME <= value <= 2**24 - 1:
                    raise ProtocolError(PROTOCOL_ERROR, f"max frame size {value}")
                self._peer_max_frame = value

    def _window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ProtocolError(FRAME_SIZE_ERROR, "WINDOW_UPDATE of a length other than 4")
        increment = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
        if stream_id == 0:
            self._send_window += increment
            if self._send_window > MAX_WINDOW:
                raise ProtocolError(FLOW_CONTROL_ERROR, "connection window over 2^31-1")
        elif stream_id in self._streams:
            self._streams[stream_id].send_window += increment

    # -- sending ---------------------------------------------------------

    def send_message(self, stream_id: int, message: bytes) -> None:
        """A gRPC message on the stream (the response headers first, once)."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.trailers is not None:
            return  # the client reset it, or its status went out
        if not stream.headers_sent:
            stream.headers_sent = True
            self._out.append(frame(HEADERS, END_HEADERS, stream_id, RESPONSE_HEADERS))
        stream.pending.append(GRPC_PREFIX.pack(0, len(message)) + message)
        self._sending[stream_id] = stream

    def send_status(self, stream_id: int, code: int, message: str = "") -> None:
        """End the stream with a gRPC status, after the messages still queued."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.trailers is not None:
            return
        stream.trailers = status_block(code, message, headers_first=not stream.headers_sent)
        stream.headers_sent = True
        self._sending[stream_id] = stream

    def close(self, code: int = NO_ERROR) -> None:
        """GOAWAY: the streams already open may finish; no new ones."""
        if not self.closed:
            self.closed = self.going_away = True
            self._out.append(frame(GOAWAY, 0, 0, struct.pack(">II", self._last_stream, code)))

    def open_streams(self) -> int:
        return len(self._streams)

    def data_to_send(self) -> bytes:
        """What may go out now: control frames, then each stream's queued
        DATA as far as the windows allow, and its trailers once all went."""
        out, self._out = self._out, []
        for stream_id, stream in list(self._sending.items()):
            if self._streams.get(stream_id) is not stream:
                del self._sending[stream_id]  # reset by the client meanwhile
                continue
            pending = stream.pending
            while pending and self._send_window > 0 and stream.send_window > 0:
                chunk = pending[0]
                n = min(len(chunk), self._send_window, stream.send_window, self._peer_max_frame)
                out.append(frame(DATA, 0, stream_id, chunk[:n]))
                self._send_window -= n
                stream.send_window -= n
                if n == len(chunk):
                    pending.popleft()
                else:
                    pending[0] = chunk[n:]
            if not pending and stream.trailers is not None:
                out.append(frame(HEADERS, END_HEADERS | END_STREAM, stream_id, stream.trailers))
                stream.trailers = b""  # sent
                del self._sending[stream_id]
                if stream.remote_open:
                    # The answer is complete; the client need not send more.
                    out.append(frame(RST_STREAM, 0, stream_id, struct.pack(">I", NO_ERROR)))
                    stream.remote_open = False
                self._forget_if_done(stream_id, stream)
        return b"".join(out)

    def _forget_if_done(self, stream_id: int, stream: _Stream) -> None:
        if not stream.remote_open and stream.trailers == b"":
            del self._streams[stream_id]


def _unpad(payload: bytes) -> bytes:
    if not payload or payload[0] >= len(payload):
        raise ProtocolError(PROTOCOL_ERROR, "padding longer than the frame")
    return payload[1:len(payload) - payload[0]]
