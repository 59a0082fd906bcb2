"""`docker run -p` syntax, shared by netctl's --publish and the OCI hook's netd.ports, and `docker ps` style."""

from __future__ import annotations

from netd.v1 import netd_pb2 as pb


def parse_publish(text: str) -> pb.PortMapping:
    """`docker run -p` syntax: [HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/tcp|udp];
    an IPv6 HOST_IP in brackets, as in [::]:8080:80."""
    spec, _, protocol = text.partition("/")
    parts = spec.rsplit(":", 2)
    if len(parts) == 2:
        parts.insert(0, "")
    if len(parts) != 3:
        raise ValueError(f"{text!r}: use [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]")
    host_ip, host, inside = parts
    host_ip = host_ip.removeprefix("[").removesuffix("]")

    def span(ports: str) -> tuple[int, int]:
        first, _, last = ports.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise ValueError(f"{text!r}: {ports!r} is not a port or a FIRST-LAST range")
        return int(first), int(last or first) - int(first) + 1

    (host_port, count), (container_port, inside_count) = span(host), span(inside)
    if count != inside_count or count < 1:
        raise ValueError(f"{text!r}: host and container ranges differ in length")
    return pb.PortMapping(protocol=protocol or "tcp", host_ip=host_ip, host_port=host_port,
                          container_port=container_port, range=count if count > 1 else 0)


def show_port(m: dict) -> str:
    """A PortMapping as JSON → `docker ps` style: 0.0.0.0:8080->80/tcp, [::1]:8000-8009->9000-9009/udp."""
    count = max(int(m.get("range") or 1), 1)

    def span(first: int) -> str:
        return f"{first}-{first + count - 1}" if count > 1 else str(first)
    host = m.get("host_ip") or "0.0.0.0"
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{span(m['host_port'])}->{span(m['container_port'])}/{m['protocol']}"
