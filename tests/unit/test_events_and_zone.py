"""The event bus (bounded per watcher) and a network's DNS zone, without sockets."""

import asyncio

import dns.message
import dns.rcode

from netd.clients.commands import EVENT_KINDS
from netd.dns.zone import Zone
from netd.events import KINDS, Bus, Event, Filter


def test_a_watcher_gets_what_it_filters_for_and_one_that_falls_behind_is_told_so():
    async def run():
        bus = Bus(capacity=3)
        blue = bus.watch(Filter(network="blue"))
        attaches = bus.watch(Filter(kinds=frozenset({"attached"})))
        for i in range(5):
            bus.publish(Event("attached", "blue", f"c{i}"))
        bus.publish(Event("detached", "red", "c9"))
        await asyncio.sleep(0)  # the offers run on the loop
        got = [attaches.queue.get_nowait() for _ in range(3)]
        assert attaches.overflowed and got[-1] is None  # the end, and the word that it is over
        assert [e.container_id for e in got[:2]] == ["c1", "c2"]  # the oldest made room for it
        bus.publish(Event("attached", "blue", "c5"))  # an overflowed watcher is no longer offered anything
        await asyncio.sleep(0)
        assert attaches.queue.empty()
        bus.forget(blue)
    asyncio.run(run())


def query(zone, name, rdtype="A"):
    return zone.answer(dns.message.make_query(name, rdtype))


def test_the_zone_answers_names_aliases_and_addresses_and_forwards_the_rest():
    zone = Zone("blue.netd")
    zone.set("c1", ["web", "www"], ["10.90.0.2", "fd90::2"])
    a = query(zone, "WWW.blue.netd.")
    assert [rr.to_text() for rrset in a.answer for rr in rrset] == ["10.90.0.2"] and a.flags & dns.flags.AA
    assert [rr.to_text() for rrset in query(zone, "web.", "AAAA").answer for rr in rrset] == ["fd90::2"]
    assert [rr.to_text() for rrset in query(zone, "2.0.90.10.in-addr.arpa.", "PTR").answer for rr in rrset] == \
        ["web.blue.netd."]
    assert query(zone, "db.blue.netd.").rcode() == dns.rcode.NXDOMAIN
    assert query(zone, "example.test.") is None  # not the network's: forwarded
    zone.unset("c1")
    assert query(zone, "web.") is None


def test_netctl_knows_every_kind_of_event():
    assert EVENT_KINDS == KINDS
