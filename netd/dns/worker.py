"""netd's DNS server: a process of its own (so a flood of queries competes
with netd's calls for CPU, not for Python's lock), started by netd with a
control socket whose fd it is given. It listens on each DNS network's gateway, UDP and
TCP port 53, answers the network's names (zone.py) and forwards the rest to
the upstream resolvers, SERVFAIL when none answers in time.

Control messages are JSON, one per datagram (SOCK_SEQPACKET), each answered
{"ok": true} or {"error": "..."}:
  {"op": "upstreams", "servers": ["192.0.2.53"]}
  {"op": "serve", "network": "blue", "addresses": ["10.90.1.1"], "search": "blue.netd"}
  {"op": "stop", "network": "blue"}
  {"op": "set", "network": "blue", "key": "c1", "names": ["web"], "addresses": ["10.90.1.2"]}
  {"op": "unset", "network": "blue", "key": "c1"}
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode

from netd.dns.zone import Zone

UPSTREAM_TIMEOUT = 2.0  # per upstream: past it the next, then SERVFAIL


class Network:
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.transports: list[asyncio.BaseTransport] = []
        self.servers: list[asyncio.base_events.Server] = []

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
        for server in self.servers:
            server.close()


class Worker:
    def __init__(self) -> None:
        self.networks: dict[str, Network] = {}
        self.upstreams: list[str] = []

    async def resolve(self, zone: Zone, wire: bytes) -> bytes | None:
        """The answer to a query's bytes; None for what is not a DNS query (dropped)."""
        try:
            query = dns.message.from_wire(wire)
        except (dns.exception.DNSException, ValueError, struct.error):
            return None
        if query.flags & dns.flags.QR:
            return None  # a response, not a query
        local = zone.answer(query)
        if local is not None:
            return local.to_wire(want_shuffle=False)  # the zone's round robin order, not dnspython's shuffle
        for server in self.upstreams:
            try:
                return (await dns.asyncquery.udp(query, server, timeout=UPSTREAM_TIMEOUT,
                                                 ignore_unexpected=True)).to_wire()
            except (dns.exception.DNSException, OSError):
                continue
        failed = dns.message.make_response(query)
        failed.set_rcode(dns.rcode.SERVFAIL)
        return failed.to_wire()

    async def serve(self, name: str, addresses: list[str], search: str) -> None:
        self.stop(name)
        network = self.networks[name] = Network(Zone(search))
        loop = asyncio.get_running_loop()
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            transport, _ = await loop.create_datagram_endpoint(lambda: Udp(self, network.zone),
                                                               local_addr=(address, 53), family=family)
            network.transports.append(transport)
            network.servers.append(await asyncio.start_server(
                lambda r, w: self.tcp(network.zone, r, w), address, 53, family=family, reuse_address=True))

    def stop(self, name: str) -> None:
        network = self.networks.pop(name, None)
        if network:
            network.close()

    async def tcp(self, zone: Zone, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 10))
                answer = await self.resolve(zone, await asyncio.wait_for(reader.readexactly(length), 10))
                if answer is None:
                    break
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def command(self, message: dict) -> None:
        op = message["op"]
        if op == "upstreams":
            self.upstreams = list(message["servers"])
        elif op == "serve":
            await self.serve(message["network"], message["addresses"], message["search"])
        elif op == "stop":
            self.stop(message["network"])
        elif op == "set":
            self.networks[message["network"]].zone.set(message["key"], message["names"], message["addresses"])
        elif op == "unset":
            if message["network"] in self.networks:
                self.networks[message["network"]].zone.unset(message["key"])
        else:
            raise ValueError(f"unknown op {op!r}")


class Udp(asyncio.DatagramProtocol):
    def __init__(self, worker: Worker, zone: Zone) -> None:
        self.worker, self.zone = worker, zone

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        asyncio.get_running_loop().create_task(self.reply(data, addr))

    async def reply(self, data: bytes, addr: tuple) -> None:
        answer = await self.worker.resolve(self.zone, data)
        if answer is not None and not self.transport.is_closing():
            self.transport.sendto(answer, addr)


async def main(control_fd: int) -> None:
    control = socket.socket(fileno=control_fd)
    control.setblocking(False)
    worker = Worker()
    loop = asyncio.get_running_loop()
    while True:
        data = await loop.sock_recv(control, 1 << 16)
        if not data:
            return  # netd went away: so does its DNS
        try:
            await worker.command(json.loads(data))
            reply = {"ok": True}
        except (OSError, ValueError, KeyError) as e:
            reply = {"error": f"{type(e).__name__}: {e}"}
        await loop.sock_sendall(control, json.dumps(reply).encode())


if __name__ == "__main__":
    sys.exit(asyncio.run(main(int(sys.argv[1]))))
