"""Proto ⇄ model, and ListEndpoints answers kept encoded."""

from __future__ import annotations

from netd import validate
from netd.errors import InvalidArgument
from netd.events import Event
from netd.model import Endpoint, Link, NetworkConfig, PortMapping
from netd.v1 import netd_pb2 as pb


def port_to_proto(m: PortMapping) -> pb.PortMapping:
    return pb.PortMapping(protocol=m.protocol, host_ip=str(m.host_ip or ""), host_port=m.host_port,
                          container_port=m.container_port, range=m.count)


def endpoint_to_proto(e: Endpoint) -> pb.Endpoint:
    return pb.Endpoint(
        container_id=e.container_id, network=e.network, ifname=e.ifname,
        host_ifname=e.host_ifname, ip_address=str(e.address), gateway=str(e.gateway),
        mac_address=e.mac_address, pid=e.pid, netns_path=e.netns_path, created_at=e.created_at, owner=e.owner,
        ports=[port_to_proto(m) for m in e.ports], ip6_address=str(e.address6 or ""), gateway6=str(e.gateway6 or ""),
        name=e.name, aliases=e.aliases,
    )


def network_to_proto(net: NetworkConfig, endpoints: int, used: int, free: int) -> pb.NetworkStatus:
    return pb.NetworkStatus(
        name=net.name, bridge=net.bridge, subnet=str(net.subnet), gateway=str(net.gateway), mtu=net.mtu,
        endpoints=endpoints, addresses_used=used, addresses_free=free, subnet6=str(net.subnet6 or ""),
        gateway6=str(net.gateway6 or ""), icc=net.icc, masquerade=net.masquerade, masquerade6=net.masquerade6,
        source=net.source, internal=net.internal, dns=net.dns, labels=dict(net.labels))


def network_spec(request: pb.CreateNetworkRequest) -> NetworkConfig:
    """CreateNetwork's request as a network (subnet 0.0.0.0/0 when it names
    none: the service picks one), checked as the config file's networks are."""
    raw = {"name": request.name, "subnet": request.subnet or "0.0.0.0/0", "internal": request.internal,
           "dns": request.dns if request.HasField("dns") else True, "labels": dict(request.labels),
           **{k: v for k, v in (("bridge", request.bridge), ("gateway", request.gateway), ("mtu", request.mtu),
                                ("subnet6", request.subnet6)) if v}}
    for flag in ("icc", "masquerade"):
        if request.HasField(flag):
            raw[flag] = getattr(request, flag)
    if not request.subnet and request.gateway:
        raise InvalidArgument("CreateNetworkRequest.gateway: give the subnet it belongs to")
    return validate.parse_network("CreateNetworkRequest", raw)


def dns_to_proto(net: NetworkConfig) -> pb.DnsConfig | None:
    if not net.dns:
        return None
    return pb.DnsConfig(nameservers=[str(a) for a in net.nameservers], search=[net.search_domain])


def event_to_proto(event: Event) -> pb.Event:
    return pb.Event(time=event.time, kind=event.kind, network=event.network, container_id=event.container_id,
                    ip_address=event.ip_address, detail=event.detail, owner=event.owner)


def link_to_proto(link: Link | None) -> pb.LinkState | None:
    if link is None:
        return None
    rx_packets, tx_packets, rx_bytes, tx_bytes, _, _, rx_dropped, tx_dropped = link.stats
    return pb.LinkState(
        name=link.name, up=link.up, carrier=link.carrier, mtu=link.mtu,
        mac_address=link.mac, rx_packets=rx_packets, tx_packets=tx_packets, rx_bytes=rx_bytes,
        tx_bytes=tx_bytes, rx_dropped=rx_dropped, tx_dropped=tx_dropped,
    )
class EndpointListing:
    """ListEndpoints answers without rebuilding 1000 messages per call (4 ms).

    The store hands out the same frozen Endpoint until it changes, so identity
    says whether an encoded endpoint, or a whole answer, is still current. A
    new answer is parsed from the endpoints' cached encodings joined (a
    repeated field is its elements' encodings one after another).
    """

    def __init__(self) -> None:
        self._encoded: dict[tuple[str, str], tuple[Endpoint, bytes]] = {}
        self._answers: dict[str, tuple[list[Endpoint], pb.ListEndpointsResponse]] = {}

    def remember(self, endpoint: Endpoint, proto: pb.Endpoint) -> None:
        """Encode a new endpoint now, while its proto is at hand (the first
        listing after 1000 attaches would otherwise encode 1000: ~17 ms)."""
        self._encoded[endpoint.key] = (endpoint, _as_list_element(proto))

    def answer(self, endpoints: list[Endpoint], network: str) -> pb.ListEndpointsResponse:
        """The response listing `endpoints` (all of them), or those of `network`."""
        listed = [e for e in endpoints if e.network == network] if network else endpoints
        cached = self._answers.get(network)
        if cached and len(cached[0]) == len(listed) and all(a is b for a, b in zip(cached[0], listed)):
            return cached[1]
        encoded, fresh = self._encoded, {}
        for e in endpoints:
            key = e.key
            hit = encoded.get(key)
            fresh[key] = hit if hit is not None and hit[0] is e else (e, _as_list_element(endpoint_to_proto(e)))
        self._encoded = fresh
        response = pb.ListEndpointsResponse.FromString(b"".join([fresh[e.key][1] for e in listed]))
        self._answers[network] = (listed, response)
        return response


def _as_list_element(endpoint: pb.Endpoint) -> bytes:
    """The endpoint as an element of ListEndpointsResponse.endpoints (field 1, length-delimited)."""
    body = endpoint.SerializeToString()
    return b"\x0a" + _varint(len(body)) + body


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


