from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AttachContainerRequest(_message.Message):
    __slots__ = ("container_id", "pid", "netns_path", "ifname", "ip_address", "owner", "ports", "network", "name", "aliases")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    NETNS_PATH_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    pid: int
    netns_path: str
    ifname: str
    ip_address: str
    owner: str
    ports: _containers.RepeatedCompositeFieldContainer[PortMapping]
    network: str
    name: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, container_id: _Optional[str] = ..., pid: _Optional[int] = ..., netns_path: _Optional[str] = ..., ifname: _Optional[str] = ..., ip_address: _Optional[str] = ..., owner: _Optional[str] = ..., ports: _Optional[_Iterable[_Union[PortMapping, _Mapping]]] = ..., network: _Optional[str] = ..., name: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class PortMapping(_message.Message):
    __slots__ = ("protocol", "host_ip", "host_port", "container_port", "range")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    HOST_IP_FIELD_NUMBER: _ClassVar[int]
    HOST_PORT_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_PORT_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    protocol: str
    host_ip: str
    host_port: int
    container_port: int
    range: int
    def __init__(self, protocol: _Optional[str] = ..., host_ip: _Optional[str] = ..., host_port: _Optional[int] = ..., container_port: _Optional[int] = ..., range: _Optional[int] = ...) -> None: ...

class AttachContainerResponse(_message.Message):
    __slots__ = ("endpoint", "dns")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    DNS_FIELD_NUMBER: _ClassVar[int]
    endpoint: Endpoint
    dns: DnsConfig
    def __init__(self, endpoint: _Optional[_Union[Endpoint, _Mapping]] = ..., dns: _Optional[_Union[DnsConfig, _Mapping]] = ...) -> None: ...

class DnsConfig(_message.Message):
    __slots__ = ("nameservers", "search")
    NAMESERVERS_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    nameservers: _containers.RepeatedScalarFieldContainer[str]
    search: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, nameservers: _Optional[_Iterable[str]] = ..., search: _Optional[_Iterable[str]] = ...) -> None: ...

class DetachContainerRequest(_message.Message):
    __slots__ = ("container_id", "network")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    network: str
    def __init__(self, container_id: _Optional[str] = ..., network: _Optional[str] = ...) -> None: ...

class DetachContainerResponse(_message.Message):
    __slots__ = ("detached",)
    DETACHED_FIELD_NUMBER: _ClassVar[int]
    detached: bool
    def __init__(self, detached: _Optional[bool] = ...) -> None: ...

class ListEndpointsRequest(_message.Message):
    __slots__ = ("network",)
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    network: str
    def __init__(self, network: _Optional[str] = ...) -> None: ...

class ListEndpointsResponse(_message.Message):
    __slots__ = ("endpoints",)
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    endpoints: _containers.RepeatedCompositeFieldContainer[Endpoint]
    def __init__(self, endpoints: _Optional[_Iterable[_Union[Endpoint, _Mapping]]] = ...) -> None: ...

class Endpoint(_message.Message):
    __slots__ = ("container_id", "network", "ifname", "host_ifname", "ip_address", "gateway", "mac_address", "pid", "netns_path", "created_at", "owner", "ports", "ip6_address", "gateway6", "name", "aliases")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    HOST_IFNAME_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    NETNS_PATH_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    IP6_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY6_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    network: str
    ifname: str
    host_ifname: str
    ip_address: str
    gateway: str
    mac_address: str
    pid: int
    netns_path: str
    created_at: str
    owner: str
    ports: _containers.RepeatedCompositeFieldContainer[PortMapping]
    ip6_address: str
    gateway6: str
    name: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, container_id: _Optional[str] = ..., network: _Optional[str] = ..., ifname: _Optional[str] = ..., host_ifname: _Optional[str] = ..., ip_address: _Optional[str] = ..., gateway: _Optional[str] = ..., mac_address: _Optional[str] = ..., pid: _Optional[int] = ..., netns_path: _Optional[str] = ..., created_at: _Optional[str] = ..., owner: _Optional[str] = ..., ports: _Optional[_Iterable[_Union[PortMapping, _Mapping]]] = ..., ip6_address: _Optional[str] = ..., gateway6: _Optional[str] = ..., name: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("version", "uptime_seconds", "firewall_driver", "networks", "problems", "instance")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FIREWALL_DRIVER_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    version: str
    uptime_seconds: float
    firewall_driver: str
    networks: _containers.RepeatedCompositeFieldContainer[NetworkStatus]
    problems: _containers.RepeatedScalarFieldContainer[str]
    instance: str
    def __init__(self, version: _Optional[str] = ..., uptime_seconds: _Optional[float] = ..., firewall_driver: _Optional[str] = ..., networks: _Optional[_Iterable[_Union[NetworkStatus, _Mapping]]] = ..., problems: _Optional[_Iterable[str]] = ..., instance: _Optional[str] = ...) -> None: ...

class NetworkStatus(_message.Message):
    __slots__ = ("name", "bridge", "subnet", "gateway", "mtu", "endpoints", "addresses_used", "addresses_free", "subnet6", "gateway6", "icc", "masquerade", "masquerade6", "source", "internal", "dns", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    BRIDGE_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_USED_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FREE_FIELD_NUMBER: _ClassVar[int]
    SUBNET6_FIELD_NUMBER: _ClassVar[int]
    GATEWAY6_FIELD_NUMBER: _ClassVar[int]
    ICC_FIELD_NUMBER: _ClassVar[int]
    MASQUERADE_FIELD_NUMBER: _ClassVar[int]
    MASQUERADE6_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_FIELD_NUMBER: _ClassVar[int]
    DNS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    bridge: str
    subnet: str
    gateway: str
    mtu: int
    endpoints: int
    addresses_used: int
    addresses_free: int
    subnet6: str
    gateway6: str
    icc: bool
    masquerade: bool
    masquerade6: bool
    source: str
    internal: bool
    dns: bool
    labels: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., bridge: _Optional[str] = ..., subnet: _Optional[str] = ..., gateway: _Optional[str] = ..., mtu: _Optional[int] = ..., endpoints: _Optional[int] = ..., addresses_used: _Optional[int] = ..., addresses_free: _Optional[int] = ..., subnet6: _Optional[str] = ..., gateway6: _Optional[str] = ..., icc: _Optional[bool] = ..., masquerade: _Optional[bool] = ..., masquerade6: _Optional[bool] = ..., source: _Optional[str] = ..., internal: _Optional[bool] = ..., dns: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateNetworkRequest(_message.Message):
    __slots__ = ("name", "subnet", "subnet6", "bridge", "gateway", "mtu", "icc", "masquerade", "internal", "dns", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    SUBNET6_FIELD_NUMBER: _ClassVar[int]
    BRIDGE_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    ICC_FIELD_NUMBER: _ClassVar[int]
    MASQUERADE_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_FIELD_NUMBER: _ClassVar[int]
    DNS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    subnet: str
    subnet6: str
    bridge: str
    gateway: str
    mtu: int
    icc: bool
    masquerade: bool
    internal: bool
    dns: bool
    labels: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., subnet: _Optional[str] = ..., subnet6: _Optional[str] = ..., bridge: _Optional[str] = ..., gateway: _Optional[str] = ..., mtu: _Optional[int] = ..., icc: _Optional[bool] = ..., masquerade: _Optional[bool] = ..., internal: _Optional[bool] = ..., dns: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateNetworkResponse(_message.Message):
    __slots__ = ("network",)
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    network: NetworkStatus
    def __init__(self, network: _Optional[_Union[NetworkStatus, _Mapping]] = ...) -> None: ...

class DeleteNetworkRequest(_message.Message):
    __slots__ = ("name", "force")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    force: bool
    def __init__(self, name: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteNetworkResponse(_message.Message):
    __slots__ = ("detached",)
    DETACHED_FIELD_NUMBER: _ClassVar[int]
    detached: int
    def __init__(self, detached: _Optional[int] = ...) -> None: ...

class InspectNetworkRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class InspectNetworkResponse(_message.Message):
    __slots__ = ("network", "endpoints")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    network: NetworkStatus
    endpoints: _containers.RepeatedCompositeFieldContainer[Endpoint]
    def __init__(self, network: _Optional[_Union[NetworkStatus, _Mapping]] = ..., endpoints: _Optional[_Iterable[_Union[Endpoint, _Mapping]]] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("network", "container_id", "kinds")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    network: str
    container_id: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, network: _Optional[str] = ..., container_id: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("time", "kind", "network", "container_id", "ip_address", "detail", "owner")
    TIME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    time: str
    kind: str
    network: str
    container_id: str
    ip_address: str
    detail: str
    owner: str
    def __init__(self, time: _Optional[str] = ..., kind: _Optional[str] = ..., network: _Optional[str] = ..., container_id: _Optional[str] = ..., ip_address: _Optional[str] = ..., detail: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...

class ListNetworksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListNetworksResponse(_message.Message):
    __slots__ = ("networks",)
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    networks: _containers.RepeatedCompositeFieldContainer[NetworkStatus]
    def __init__(self, networks: _Optional[_Iterable[_Union[NetworkStatus, _Mapping]]] = ...) -> None: ...

class InspectEndpointRequest(_message.Message):
    __slots__ = ("container_id", "network")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    network: str
    def __init__(self, container_id: _Optional[str] = ..., network: _Optional[str] = ...) -> None: ...

class InspectEndpointResponse(_message.Message):
    __slots__ = ("endpoint", "host_link", "container_link", "container_addresses", "container_routes")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    HOST_LINK_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_LINK_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ROUTES_FIELD_NUMBER: _ClassVar[int]
    endpoint: Endpoint
    host_link: LinkState
    container_link: LinkState
    container_addresses: _containers.RepeatedScalarFieldContainer[str]
    container_routes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, endpoint: _Optional[_Union[Endpoint, _Mapping]] = ..., host_link: _Optional[_Union[LinkState, _Mapping]] = ..., container_link: _Optional[_Union[LinkState, _Mapping]] = ..., container_addresses: _Optional[_Iterable[str]] = ..., container_routes: _Optional[_Iterable[str]] = ...) -> None: ...

class LinkState(_message.Message):
    __slots__ = ("name", "up", "carrier", "mtu", "mac_address", "rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_dropped", "tx_dropped")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RX_PACKETS_FIELD_NUMBER: _ClassVar[int]
    TX_PACKETS_FIELD_NUMBER: _ClassVar[int]
    RX_BYTES_FIELD_NUMBER: _ClassVar[int]
    TX_BYTES_FIELD_NUMBER: _ClassVar[int]
    RX_DROPPED_FIELD_NUMBER: _ClassVar[int]
    TX_DROPPED_FIELD_NUMBER: _ClassVar[int]
    name: str
    up: bool
    carrier: bool
    mtu: int
    mac_address: str
    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int
    rx_dropped: int
    tx_dropped: int
    def __init__(self, name: _Optional[str] = ..., up: _Optional[bool] = ..., carrier: _Optional[bool] = ..., mtu: _Optional[int] = ..., mac_address: _Optional[str] = ..., rx_packets: _Optional[int] = ..., tx_packets: _Optional[int] = ..., rx_bytes: _Optional[int] = ..., tx_bytes: _Optional[int] = ..., rx_dropped: _Optional[int] = ..., tx_dropped: _Optional[int] = ...) -> None: ...

class CheckEndpointRequest(_message.Message):
    __slots__ = ("container_id", "network")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    network: str
    def __init__(self, container_id: _Optional[str] = ..., network: _Optional[str] = ...) -> None: ...

class CheckEndpointResponse(_message.Message):
    __slots__ = ("ok", "problems")
    OK_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    problems: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ok: _Optional[bool] = ..., problems: _Optional[_Iterable[str]] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListNodesResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[Node]
    def __init__(self, nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("name", "public_ip", "subnet", "backend", "lease_seconds", "reachable", "reason", "this_host")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_IP_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    THIS_HOST_FIELD_NUMBER: _ClassVar[int]
    name: str
    public_ip: str
    subnet: str
    backend: str
    lease_seconds: int
    reachable: bool
    reason: str
    this_host: bool
    def __init__(self, name: _Optional[str] = ..., public_ip: _Optional[str] = ..., subnet: _Optional[str] = ..., backend: _Optional[str] = ..., lease_seconds: _Optional[int] = ..., reachable: _Optional[bool] = ..., reason: _Optional[str] = ..., this_host: _Optional[bool] = ...) -> None: ...
