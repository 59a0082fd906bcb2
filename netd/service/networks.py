"""Networks created and deleted while netd runs (CreateNetwork,
DeleteNetwork), kept in the store; and each network's DNS.

A mixin of Service (core.py). A network is added to the service only once
its bridge, firewall rules and DNS are in place, and removed before they go;
allocation (under _alloc_lock) checks the network still exists, so no
endpoint slips onto a network being deleted.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from ipaddress import IPv4Network
from typing import Any

import structlog

from netd import ipam
from netd.errors import AlreadyExists, FailedPrecondition, NetdError
from netd.model import NetworkConfig

log = structlog.get_logger("netd")


class NetworkAdmin:
    """Create and delete networks. (Attributes: see Service.)"""

    networks: tuple[NetworkConfig, ...]
    nets: dict[str, NetworkConfig]
    store: Any
    links: Any
    sysctls: Any
    firewall: Any
    dns: Any
    mark: str
    config_file: str
    address_pools: tuple[tuple[IPv4Network, int], ...]
    _bridges: dict[str, int]
    _route_metric: dict[str, int]
    _alloc_lock: threading.Lock

    def _set_networks(self, networks: tuple[NetworkConfig, ...]) -> None:
        """Readers take the tuple or dict as they find them: both are replaced, never changed."""
        self.networks = networks
        self.nets = {n.name: n for n in networks}

    def load_networks(self) -> None:
        """At start, before prepare(): the networks created through the API earlier."""
        for net in self.store.networks():
            if net.name in self.nets:
                log.error("network_shadowed", network=net.name, reason="the config file has one by that name")
                continue
            self._route_metric[net.name] = len(self.networks)
            self._bridges[net.name] = 0
            self._set_networks((*self.networks, net))

    def create_network(self, spec: NetworkConfig) -> NetworkConfig:
        """A network like `spec` (subnet 0.0.0.0/0: one from the address
        pools; mtu 0: the uplink's), its bridge, rules and DNS in place; or,
        having changed nothing, the reason it cannot be."""
        with self._networks_lock:
            for other in self.networks:
                if other.name == spec.name:
                    raise AlreadyExists(f"name: network {spec.name} exists")
                if other.bridge == spec.bridge:
                    raise AlreadyExists(f"bridge: {spec.bridge} is network {other.name}'s")
            net = self._placed(spec)
            index = self.links.ensure_bridge(net, self.mark)
            try:
                self._enable_route_localnet(net)
                with self._alloc_lock:
                    self._bridges[net.name], self._route_metric[net.name] = index, len(self.networks)
                    self._set_networks((*self.networks, net))
                self.sync_firewall()
                if net.dns and self.dns:
                    self.dns.serve(net)
                self.store.add_network(net)
            except BaseException:
                self._withdraw(net)
                raise
        log.info("network_created", network=net.name, bridge=net.bridge, subnet=str(net.subnet))
        self._publish("network_created", network=net.name, detail=str(net.subnet))
        return net

    def _placed(self, spec: NetworkConfig) -> NetworkConfig:
        """The spec with its subnet (picked from the pools if it has none)
        clear of every other network and of the host's own addresses and routes."""
        taken = [n.subnet for n in self.networks]
        if spec.subnet.prefixlen == 0:  # no subnet asked for
            subnet = ipam.pick_subnet(self.address_pools, taken + self.links.host_prefixes())
            spec = replace(spec, subnet=subnet, gateway=next(subnet.hosts()))
        clash = next((n for n in self.networks if n.subnet.overlaps(spec.subnet)), None)
        if clash:
            raise FailedPrecondition(f"subnet: {spec.subnet} overlaps network {clash.name}'s {clash.subnet}")
        conflicts = self.links.overlapping(spec.subnet, spec.bridge)
        if conflicts:
            raise FailedPrecondition(f"subnet: {spec.subnet} overlaps {', '.join(conflicts)} on the host")
        return replace(spec, mtu=spec.mtu or self.links.uplink_mtu(), source="api")

    def _withdraw(self, net: NetworkConfig) -> None:
        """Undo what create_network did for `net`, quietly: a failure of one step must not stop the others."""
        with self._alloc_lock:
            self._set_networks(tuple(n for n in self.networks if n.name != net.name))
        self._quietly("remove firewall rules", self.sync_firewall)
        if self.dns:
            self._quietly("stop DNS", self.dns.stop, net.name)
        self._quietly("delete bridge", self.links.delete_bridge, net.bridge, self.mark)
        self._bridges.pop(net.name, None)

    def delete_network(self, name: str, force: bool = False) -> int:
        """Delete a network created through the API, with its bridge, rules
        and DNS; force: detach its endpoints first. Returns how many were."""
        with self._networks_lock:
            net = self.network(name)
            if net.source == "config":
                raise FailedPrecondition(f"network {name} comes from the config file {self.config_file or ''}; "
                                         "remove it there")
            detached = 0
            while True:
                with self._alloc_lock:
                    ids = [e.container_id for e in self.store.list(name)]
                    if not ids:
                        self._set_networks(tuple(n for n in self.networks if n.name != name))
                        break
                if not force:
                    raise FailedPrecondition(f"network {name} has {len(ids)} endpoints ({', '.join(ids[:10])}"
                                             f"{', …' if len(ids) > 10 else ''}): detach them, or force")
                detached += sum(self.detach(cid, name) for cid in ids)
            self._withdraw(net)
            self.store.remove_network(name)
        log.info("network_deleted", network=name, detached=detached)
        self._publish("network_deleted", network=name)
        return detached

    def serve_dns(self) -> None:
        """At start: DNS on every network with dns on, with the names of its endpoints."""
        for net in self.networks:
            if net.dns and self.dns:
                try:
                    self.dns.serve(net)
                    for endpoint in self.store.list(net.name):
                        if endpoint.ready:
                            self.dns.add(endpoint)
                except NetdError as e:
                    log.error("dns_failed", network=net.name, error=str(e))
