"""Stand-ins for the kernel boundaries (links, namespaces, firewall), so the
service's orchestration and rollback can be tested without root."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from netd.errors import ContainerNotFound, FirewallError, KernelError
from netd.model import NetnsId


@dataclass
class FakeNetns:
    fd: int
    id: NetnsId

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


@dataclass
class FakeNamespaces:
    alive: set = field(default_factory=set)  # pids whose netns exists

    def open_netns(self, pid=0, path=""):
        if pid and pid not in self.alive:
            raise ContainerNotFound(f"pid {pid}: no such process")
        return FakeNetns(fd=pid or 1000, id=NetnsId(4, pid or 1000))


@dataclass
class FakeLinks:
    veths: dict = field(default_factory=dict)  # host name -> ifindex
    configured: set = field(default_factory=set)
    fail_on: str = ""  # name of a step that raises
    next_index: int = 100

    def _maybe_fail(self, step):
        if self.fail_on == step:
            raise KernelError(f"failed to {step}: injected")

    def overlapping(self, subnet, bridge):
        return []

    bridge_ok: bool = True
    enslaved: list = field(default_factory=list)

    marked: dict = field(default_factory=dict)  # ifindex → mark given afterwards
    uplink_names: list = field(default_factory=lambda: ["uplink0"])

    def ensure_bridge(self, net, mark, adopt_unmarked=False):
        self.bridge_ok = True
        return 1

    def bridge_problem(self, net, index, mark):
        return "" if self.bridge_ok else "down"

    def set_up(self, name):
        self.down.discard(name)

    def mark_link(self, index, mark):
        self.marked[index] = mark

    def uplinks(self):
        return self.uplink_names

    def enslave(self, name, index, hairpin=False, isolated=False):
        self.enslaved.append(name)

    port_flags: dict = field(default_factory=dict)  # host name -> (hairpin, isolated)

    def create_veth(self, host_ifname, peer_ifname, ns_fd, bridge_index, mtu, mac, mark, hairpin=False, isolated=False):
        self._maybe_fail("create_veth")
        self.port_flags[host_ifname] = (hairpin, isolated)
        self.next_index += 1
        self.veths[host_ifname] = self.next_index
        return self.next_index, 2

    stale: set = field(default_factory=set)  # addresses the host maps to another MAC
    pins: dict = field(default_factory=dict)  # bridge index → addresses with a permanent host neighbour entry

    @property
    def pinned(self) -> set:
        return set().union(*self.pins.values())

    def settle_port(self, bridge_index, index, endpoint):
        self._maybe_fail("settle_port")
        address = endpoint.address.ip
        held_another = address in self.stale
        self.stale.discard(address)
        self.pins.setdefault(bridge_index, set()).add(address)
        return held_another

    def pin_neighbours(self, bridge_index, endpoints):
        self.pins[bridge_index] = {e.address.ip for e in endpoints}

    def forget_neighbours(self, bridge_index, endpoint):
        self.pins.get(bridge_index, set()).discard(endpoint.address.ip)

    neighbour_deleted: bool = False  # set by a test that deletes pins behind netd's back

    def neighbours_deleted(self):
        seen, self.neighbour_deleted = self.neighbour_deleted, False
        return seen

    def unpinned(self, bridge_index, endpoints):
        return [e for e in endpoints if e.address.ip not in self.pins.get(bridge_index, set())]

    def repin(self, bridge_index, endpoint):
        self.pins.setdefault(bridge_index, set()).add(endpoint.address.ip)

    def configure_container_side(self, ns_fd, endpoint, index, metric=0):
        self._maybe_fail("configure_container_side")
        self.configured.add(str(endpoint.address))

    announced: list = field(default_factory=list)

    def announce(self, ns_fd, endpoint):
        self.announced.append(str(endpoint.address.ip))

    def host_link(self, name):
        if name not in self.veths:
            return None
        return SimpleNamespace(master=1, index=self.veths[name], up=name not in self.down)

    down: set = field(default_factory=set)  # host ends someone set down

    def container_view(self, ns_fd, ifname):
        configured = self.configured

        class View:
            def problems(self, e):
                return [] if str(e.address) in configured else [f"container: {e.ifname} lacks address {e.address}"]

        return View()

    def delete_link(self, name):
        self._maybe_fail("delete_link")
        return self.veths.pop(name, None) is not None

    foreign: dict = field(default_factory=dict)  # netd-named links netd did not make: name → alias

    def host_veths(self, mark):
        return {name: self.host_link(name) for name in self.veths}, dict(self.foreign)

    def link_index(self, name):
        return self.veths.get(name)

    def delete_link_index(self, index):
        name = next((n for n, i in self.veths.items() if i == index), None)
        return name is not None and self.veths.pop(name) is not None


class FakeSysctls:
    """/proc/sys/net as a dict: forwarding off until netd turns it on."""

    def __init__(self):
        self.values = {"ipv4/ip_forward": "0", "ipv6/conf/all/forwarding": "0", "ipv6/conf/uplink0/accept_ra": "1"}

    def read(self, knob):
        return self.values.get(knob, "")

    def write(self, knob, value):
        self.values[knob] = value

    def ensure(self, knob, value):
        found = self.read(knob)
        if found == value:
            return None
        self.write(knob, value)
        return found


class FakeFirewall:
    name = "fake"

    def __init__(self):
        self.applied = 0
        self.flushed = False
        self.rules = None  # the last Ruleset applied
        self.fail = False

    def apply(self, rules):
        if self.fail:
            raise FirewallError("failed to apply rules: injected")
        self.applied += 1
        self.flushed = False
        self.rules = rules

    def intact(self, rules):
        return self.applied > 0 and not self.flushed and rules == self.rules

    def teardown(self):
        self.applied = 0
