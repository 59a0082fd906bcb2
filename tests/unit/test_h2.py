"""netd.h2 without sockets: frames in, events and frames out."""

import struct

import hpack
import pytest

from netd import h2

REQUEST_HEADERS = [(":method", "POST"), (":scheme", "http"), (":path", "/netd.v1.Netd/ListEndpoints"),
                   (":authority", "netd"), ("content-type", "application/grpc"), ("te", "trailers")]


class Client:
    """The client's side, just enough to drive a Connection and read its answers."""

    def __init__(self, max_message: int = 1024) -> None:
        self.server = h2.Connection(max_message)
        self.encoder, self.decoder = hpack.Encoder(), hpack.Decoder()
        self.events = self.server.receive(h2.PREFACE + h2.frame(h2.SETTINGS, 0, 0))

    def send(self, data: bytes) -> list:
        return self.server.receive(data)

    def call(self, stream_id: int, *messages: bytes, end: bool = True, headers=REQUEST_HEADERS) -> list:
        data = h2.frame(h2.HEADERS, h2.END_HEADERS, stream_id, self.encoder.encode(headers))
        for i, m in enumerate(messages):
            last = end and i == len(messages) - 1
            data += h2.frame(h2.DATA, h2.END_STREAM if last else 0, stream_id, struct.pack(">BI", 0, len(m)) + m)
        return self.send(data)

    def frames(self) -> list[tuple[int, int, int, bytes]]:
        """(type, flags, stream, payload) of what the server has to send; header blocks decoded."""
        data, out = self.server.data_to_send(), []
        while data:
            high, low, kind, flags, stream_id = h2.FRAME_HEADER.unpack_from(data)
            n = high << 8 | low
            payload = data[9:9 + n]
            if kind == h2.HEADERS:
                payload = dict(self.decoder.decode(payload))
            out.append((kind, flags, stream_id, payload))
            data = data[9 + n:]
        return out


def test_the_server_speaks_first_and_acknowledges_settings_and_pings():
    c = Client()
    frames = c.frames()
    kinds = [(k, f) for k, f, _, _ in frames]
    assert kinds[0] == (h2.SETTINGS, 0) and (h2.SETTINGS, h2.ACK) in kinds
    assert (h2.WINDOW_UPDATE, 0) in kinds  # the connection's window raised to 1 MiB
    c.send(h2.frame(h2.PING, 0, 0, b"12345678"))
    assert c.frames() == [(h2.PING, h2.ACK, 0, b"12345678")]


def test_a_unary_call_gives_its_headers_message_and_end_then_the_answer_goes_out():
    c = Client()
    c.frames()
    events = c.call(1, b"request")
    assert [type(e) for e in events] == [h2.Call, h2.Message, h2.HalfClosed]
    assert events[0].headers[":path"] == "/netd.v1.Netd/ListEndpoints"
    assert events[1].data == b"request" and not events[1].compressed
    c.server.send_message(1, b"answer")
    c.server.send_status(1, 0)
    headers, data, trailers = c.frames()
    assert headers == (h2.HEADERS, h2.END_HEADERS, 1, {":status": "200", "content-type": "application/grpc"})
    assert data == (h2.DATA, 0, 1, b"\0\0\0\0\x06answer")
    assert trailers == (h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 1, {"grpc-status": "0"})
    assert c.server.open_streams() == 0


def test_an_error_is_one_header_block_with_the_message_percent_encoded():
    c = Client()
    c.frames()
    c.call(1, b"x")
    c.server.send_status(1, 5, "container é 100% gone\n")
    [(kind, flags, _, headers)] = c.frames()
    assert (kind, flags) == (h2.HEADERS, h2.END_HEADERS | h2.END_STREAM)
    assert headers == {":status": "200", "content-type": "application/grpc", "grpc-status": "5",
                       "grpc-message": "container %C3%A9 100%25 gone%0A"}


def test_messages_split_across_frames_and_several_in_one_frame():
    c = Client()
    body = struct.pack(">BI", 0, 3) + b"abc" + struct.pack(">BI", 0, 2) + b"de"
    events = c.send(h2.frame(h2.HEADERS, h2.END_HEADERS, 1, c.encoder.encode(REQUEST_HEADERS))
                    + h2.frame(h2.DATA, 0, 1, body[:4]))
    assert [type(e) for e in events] == [h2.Call]
    events = c.send(h2.frame(h2.DATA, h2.END_STREAM, 1, body[4:]))
    assert [(type(e), getattr(e, "data", None)) for e in events] == [
        (h2.Message, b"abc"), (h2.Message, b"de"), (h2.HalfClosed, None)]


def test_header_blocks_continue_and_padding_and_priority_are_skipped():
    c = Client()
    block = c.encoder.encode(REQUEST_HEADERS)
    padded = bytes([3]) + bytes(5) + block[:10] + b"pad"  # pad length, priority fields, first part, padding
    events = c.send(h2.frame(h2.HEADERS, h2.PADDED | h2.PRIORITY_FLAG, 1, padded)
                    + h2.frame(h2.CONTINUATION, h2.END_HEADERS | h2.END_STREAM, 1, block[10:]))
    assert isinstance(events[0], h2.Call) and events[0].headers["te"] == "trailers"


def test_answers_wait_for_the_clients_window_and_frame_size():
    c = Client()
    c.frames()
    c.call(1, b"x")
    c.server.send_message(1, b"y" * 70000)
    c.server.send_status(1, 0)
    frames = c.frames()
    sent = [p for k, _, _, p in frames if k == h2.DATA]
    assert max(map(len, sent)) <= h2.DEFAULT_MAX_FRAME and sum(map(len, sent)) == h2.DEFAULT_WINDOW
    assert not [f for f in frames if f[1] & h2.END_STREAM]  # no trailers before the whole message
    c.send(h2.frame(h2.WINDOW_UPDATE, 0, 0, struct.pack(">I", 10000)))
    assert c.frames() == []  # the stream's own window is still empty
    c.send(h2.frame(h2.WINDOW_UPDATE, 0, 1, struct.pack(">I", 10000)))
    rest = c.frames()
    assert sum(len(p) for k, _, _, p in rest if k == h2.DATA) == 70005 - h2.DEFAULT_WINDOW
    assert rest[-1][:3] == (h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 1)


def test_a_larger_initial_window_from_the_client_applies_to_open_streams():
    c = Client()
    c.frames()
    c.call(1, b"x")
    c.send(h2.frame(h2.SETTINGS, 0, 0, struct.pack(">HI", h2.SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20))
           + h2.frame(h2.WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)))
    c.frames()
    c.server.send_message(1, b"y" * 200000)
    c.server.send_status(1, 0)
    assert sum(len(p) for k, _, _, p in c.frames() if k == h2.DATA) == 200005


def test_a_message_over_the_limit_ends_the_call_resource_exhausted():
    c = Client(max_message=10)
    c.frames()
    events = c.call(1, b"z" * 11, end=False)
    assert [type(e) for e in events] == [h2.Call]
    frames = c.frames()
    assert frames[0][3]["grpc-status"] == "8" and "11 bytes" in frames[0][3]["grpc-message"]
    assert frames[1][:2] == (h2.RST_STREAM, 0)  # the client need not send the rest
    assert c.server.open_streams() == 0
    assert c.send(h2.frame(h2.DATA, h2.END_STREAM, 1, b"late")) == []


def test_a_reset_cancels_and_its_answer_is_dropped():
    c = Client()
    c.frames()
    c.call(1, b"x", end=False)
    assert c.send(h2.frame(h2.RST_STREAM, 0, 1, struct.pack(">I", 8))) == [h2.Cancelled(1)]
    c.server.send_message(1, b"answer")
    c.server.send_status(1, 0)
    assert c.frames() == []


def test_after_goaway_new_streams_are_refused_and_open_ones_finish():
    c = Client()
    c.frames()
    c.call(1, b"x")
    c.server.close()
    assert c.call(3, b"x") == []
    c.server.send_message(1, b"answer")
    c.server.send_status(1, 0)
    frames = c.frames()
    assert frames[0][:3] == (h2.GOAWAY, 0, 0) and struct.unpack(">II", frames[0][3]) == (1, h2.NO_ERROR)
    assert (h2.RST_STREAM, 0, 3, struct.pack(">I", h2.REFUSED_STREAM)) in frames
    assert frames[-1][:3] == (h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 1)


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\n\r\n" + bytes(20),  # not HTTP/2
    h2.PREFACE + h2.frame(h2.CONTINUATION, h2.END_HEADERS, 1, b""),
    h2.PREFACE + h2.frame(h2.HEADERS, h2.END_HEADERS, 2, b"\x82"),  # even: a server's stream id
    h2.PREFACE + h2.frame(h2.HEADERS, h2.END_HEADERS, 1, b"\xff\xff\xff\xff"),  # no such table entry
    h2.PREFACE + h2.frame(h2.SETTINGS, 0, 0, b"12345"),
    h2.PREFACE + h2.FRAME_HEADER.pack(0x40, 0x01, h2.DATA, 0, 1),  # over the 16 KiB frame size
])
def test_protocol_errors_end_the_connection_with_goaway(data):
    server = h2.Connection(1024)
    with pytest.raises(h2.ProtocolError):
        server.receive(data)
    out = server.data_to_send()
    _, _, kind, _, stream_id = h2.FRAME_HEADER.unpack_from(out, len(out) - 17)  # the last frame
    assert (kind, stream_id) == (h2.GOAWAY, 0) and struct.unpack(">I", out[-4:])[0] != h2.NO_ERROR
    assert server.closed


def test_hpack_integers_past_their_prefix():
    assert h2._integer(10, 5, 0) == b"\x0a"
    assert h2._integer(1337, 5, 0) == b"\x1f\x9a\x0a"  # RFC 7541 C.1.2
    long_value = "x" * 300
    block = h2.literal(b"grpc-message", long_value.encode())
    assert hpack.Decoder().decode(block) == [("grpc-message", long_value)]
