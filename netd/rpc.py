"""A gRPC server for the connections the gate accepts, on netd.h2.

Why not grpcio's server: it cost ~0.75 ms of CPU per call in its own
machinery, and it cannot say which process made a call, so netd relayed
every byte through the gate to learn it (another ~0.3 ms). Here the gate
hands over the connection itself, with its SO_PEERCRED, and calls go from
the socket to the servicer with no thread between them (README,
Performance). grpcio's generated registration functions, its servicer
base classes and its health and reflection servicers are used unchanged:
they register into a Server as they would into grpc's.

Threads: each connection has one reading its socket. A unary method with a
quick variant (see Server.quick) runs on it; the quick variant raises Slow,
having done nothing, when the call may take long, and it then goes to the
worker pool like every other unary call. A streaming call has a thread of
its own (health's Watch lasts as long as the client wants).
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
import structlog

from netd import h2

log = structlog.get_logger("netd")
CHUNK = 256 * 1024
OK, UNKNOWN, INTERNAL, UNIMPLEMENTED, UNAVAILABLE = 0, 2, 13, 12, 14
_END = object()  # a request stream's end


class Slow(Exception):
    """A quick variant declines the call: it goes to the worker pool."""


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


class Context:
    """The part of grpc.ServicerContext that servicers use; `caller` is the
    SO_PEERCRED of the connection (netd.gate.Caller)."""

    def __init__(self, call: _Call, caller: Any) -> None:
        self._call = call
        self.caller = caller
        self.code: grpc.StatusCode | None = None
        self.details = ""

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details

    def is_active(self) -> bool:
        return not self._call.over

    def add_callback(self, callback: Callable[[], None]) -> bool:
        self._call.callbacks.append(callback)
        return True


class _Call:
    def __init__(self, stream_id: int, path: str, handler: grpc.RpcMethodHandler) -> None:
        self.stream_id, self.path, self.handler = stream_id, path, handler
        self.requests: list[bytes] = []  # unary: the request, once whole
        self.stream: queue.SimpleQueue | None = queue.SimpleQueue() if handler.request_streaming else None
        self.callbacks: list[Callable[[], None]] = []
        self.over = False


class Server:
    """Methods registered as into a grpc.Server, served on connections the
    gate hands over (serve_connection)."""

    def __init__(self, workers: int = 16, max_message: int = 4 * 1024 * 1024) -> None:
        self.methods: dict[str, grpc.RpcMethodHandler] = {}
        # path → fn(request, context): the connection's thread serves the call
        # with it, unless it raises Slow.
        self.quick: dict[str, Callable[[Any, Context], Any]] = {}
        self.max_message = max_message
        self._pool = futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc")
        self._connections: set[_Connection] = set()
        self._lock = threading.Lock()
        self._stopping = False

    # What grpc's generated add_*Servicer_to_server functions call:
    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self.methods.update({f"/{service}/{name}": handler for name, handler in handlers.items()})

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        pass  # the same methods, also given to add_registered_method_handlers

    def serve_connection(self, sock: socket.socket, caller: Any) -> None:
        """Serve the connection on a thread of its own until the client
        leaves; the socket is closed when its last call is over."""
        sock.setblocking(True)  # systemd's listener is non-blocking; its connections need not be
        # Room for a large answer (ListEndpoints of 1000) in one write.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHUNK)
        connection = _Connection(self, sock, caller)
        with self._lock:
            if self._stopping:
                sock.close()
                return
            self._connections.add(connection)
        threading.Thread(target=connection.run, name=f"rpc-conn-{caller}", daemon=True).start()

    def forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def stop(self, grace: float) -> None:
        """No new calls (GOAWAY); those in flight have `grace` seconds."""
        with self._lock:
            self._stopping = True
            connections = list(self._connections)
        for connection in connections:
            connection.go_away()
        deadline = time.monotonic() + grace
        while any(c.busy() for c in connections) and time.monotonic() < deadline:
            time.sleep(0.01)
        for connection in connections:
            connection.hang_up()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def submit(self, fn: Callable, *args: object) -> None:
        self._pool.submit(fn, *args)


class _Connection:
    def __init__(self, server: Server, sock: socket.socket, caller: Any) -> None:
        self.server = server
        self.sock = sock
        self.caller = caller
        self.h2 = h2.Connection(server.max_message)
        self.calls: dict[int, _Call] = {}
        # Held while the HTTP/2 state changes and its bytes go out, so frames
        # leave in the order the state produced them; the socket closes
        # under it too, never while another thread writes to its fd.
        self.lock = threading.Lock()
        self.reading = True
        self.closed = False

    # -- the connection's own thread -------------------------------------

    def run(self) -> None:
        try:
            with self.lock:
                self._flush()
            while data := self.sock.recv(CHUNK):
                with self.lock:
                    events = self.h2.receive(data)
                    self._flush()
                for event in events:
                    self._on(event)
        except h2.ProtocolError as e:
            log.warning("rpc_protocol_error", caller=str(self.caller), error=str(e))
            with self.lock:
                self._flush()
        except OSError:
            pass
        finally:
            with self.lock:
                self.reading = False
                calls, self.calls = list(self.calls.values()), {}
            for call in calls:
                self._end(call)
            self._close_if_idle()

    def _on(self, event: object) -> None:
        if isinstance(event, h2.Message):
            call = self.calls.get(event.stream_id)
            if call is None:
                return
            if event.compressed:
                self._finish(call, UNIMPLEMENTED, "compressed messages are not supported (grpc-encoding identity only)")
            elif call.stream is not None:
                call.stream.put(event.data)
            else:
                call.requests.append(event.data)
        elif isinstance(event, h2.HalfClosed):
            call = self.calls.get(event.stream_id)
            if call is None:
                return
            if call.stream is not None:
                call.stream.put(_END)
            else:
                self._dispatch_unary(call)
        elif isinstance(event, h2.Call):
            self._start(event)
        elif isinstance(event, h2.Cancelled):
            with self.lock:
                call = self.calls.pop(event.stream_id, None)
            if call is not None:
                self._end(call)

    def _start(self, event: h2.Call) -> None:
        path = event.headers.get(":path", "")
        handler = self.server.methods.get(path)
        call = _Call(event.stream_id, path, handler or _UNKNOWN)
        with self.lock:
            self.calls[event.stream_id] = call
        if handler is None:
            self._finish(call, UNIMPLEMENTED, f"method {path} is not implemented")
        elif not event.headers.get("content-type", "").startswith("application/grpc"):
            self._finish(call, INTERNAL, f"content-type {event.headers.get('content-type', '')!r} is not gRPC's")
        elif call.stream is not None:
            self._thread(call)

    def _dispatch_unary(self, call: _Call) -> None:
        """The request is whole: serve the call here if it is quick, else elsewhere."""
        if len(call.requests) != 1:
            self._finish(call, UNIMPLEMENTED, f"{call.path} takes exactly one request message")
            return
        if call.handler.response_streaming:
            self._thread(call)
            return
        quick = self.server.quick.get(call.path)
        if quick is not None:
            context = Context(call, self.caller)
            try:
                self._answer(call, context, quick(_request(call), context))
                return
            except Slow:
                pass
            except Exception as e:  # noqa: BLE001 - the edge
                self._fail(call, context, e)
                return
        try:
            self.server.submit(self._run, call)
        except RuntimeError:  # the pool is shut down: netd is stopping
            self._finish(call, UNAVAILABLE, "netd is shutting down")

    def _thread(self, call: _Call) -> None:
        threading.Thread(target=self._run, args=(call,), name=f"rpc-{call.path}", daemon=True).start()

    # -- any thread ------------------------------------------------------

    def _run(self, call: _Call) -> None:
        """Run a call's handler, whatever its kind, and send its answer."""
        handler, context = call.handler, Context(call, self.caller)
        try:
            request = _request(call)
            behaviour = (handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream)
            answer = behaviour(request, context)
            if handler.response_streaming:
                for response in answer or ():
                    self._send(call, _serialize(handler, response))
                self._finish(call, _code(context.code), context.details)
            else:
                self._answer(call, context, answer)
        except Exception as e:  # noqa: BLE001 - the edge
            self._fail(call, context, e)

    def _answer(self, call: _Call, context: Context, response: Any) -> None:
        if context.code not in (None, grpc.StatusCode.OK):
            self._finish(call, _code(context.code), context.details)
            return
        self._finish(call, OK, context.details, _serialize(call.handler, response))

    def _fail(self, call: _Call, context: Context, error: Exception) -> None:
        if isinstance(error, Aborted):
            self._finish(call, _code(error.code), error.details)
            return
        if isinstance(error, BadRequest):
            self._finish(call, INTERNAL, f"{call.path}: the request message does not parse")
            return
        log.exception("call_crashed", method=call.path)
        self._finish(call, UNKNOWN, f"internal error in {call.path}: {type(error).__name__}")

    def _send(self, call: _Call, message: bytes) -> None:
        with self.lock:
            if not self.closed:
                self.h2.send_message(call.stream_id, message)
                self._flush()

    def _finish(self, call: _Call, code: int, details: str = "", message: bytes | None = None) -> None:
        """End the call with its status, after its last message if given:
        one write for both, so the client wakes once for a unary answer."""
        with self.lock:
            if self.calls.pop(call.stream_id, None) is None:
                return
            if not self.closed:
                if message is not None:
                    self.h2.send_message(call.stream_id, message)
                self.h2.send_status(call.stream_id, code, details)
                self._flush()
        self._end(call)

    def _end(self, call: _Call) -> None:
        call.over = True
        if call.stream is not None:
            call.stream.put(_END)
        for callback in call.callbacks:
            try:
                callback()
            except Exception:  # noqa: BLE001
                log.exception("call_callback_failed", method=call.path)
        self._close_if_idle()

    def _flush(self) -> None:
        """Send what the HTTP/2 state holds; the caller holds self.lock."""
        data = self.h2.data_to_send()
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except OSError:
                self._close()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
            self.server.forget(self)

    def _close_if_idle(self) -> None:
        with self.lock:
            if not self.reading and not self.calls:
                self._close()

    def busy(self) -> bool:
        with self.lock:
            return bool(self.calls) and not self.closed

    def go_away(self) -> None:
        with self.lock:
            self.h2.close()
            self._flush()
        self._close_if_idle()

    def hang_up(self) -> None:
        """Stop reading: the connection's thread ends its calls and closes."""
        with self.lock:
            if not self.closed:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)


class BadRequest(Exception):
    pass


def _request(call: _Call) -> Any:
    """The request, or for a streamed one an iterator over them, as the handler takes it."""
    parse = call.handler.request_deserializer
    if call.stream is not None:
        return (_parse(parse, m) for m in iter(call.stream.get, _END))
    return _parse(parse, call.requests[0])


def _parse(parse: Callable[[bytes], Any] | None, data: bytes) -> Any:
    try:
        return parse(data) if parse else data
    except Exception:  # noqa: BLE001 - the client's bytes
        raise BadRequest() from None


def _serialize(handler: grpc.RpcMethodHandler, response: Any) -> bytes:
    return handler.response_serializer(response) if handler.response_serializer else response


def _code(code: grpc.StatusCode | None) -> int:
    return OK if code is None else code.value[0]


_UNKNOWN = grpc.unary_unary_rpc_method_handler(lambda request, context: None)
