"""The answers netd's DNS gives for one network, wire format by dnspython:
A/AAAA for its containers' names and aliases (round robin when several
share one), PTR for their addresses, NXDOMAIN inside the network's search
domain; anything else is not the network's to answer (the caller forwards it)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

TTL = 5  # seconds: containers come and go


@dataclass
class Zone:
    search: str  # e.g. "blue.netd": names answer bare and under it
    records: dict[str, tuple[list[str], list[IPv4Address | IPv6Address]]] = field(default_factory=dict)  # key → (names, addresses)
    _turn: itertools.count = field(default_factory=itertools.count)

    def set(self, key: str, names: list[str], addresses: list[str]) -> None:
        self.records[key] = ([n.lower() for n in names], [ip_address(a) for a in addresses])

    def unset(self, key: str) -> None:
        self.records.pop(key, None)

    def _addresses(self, name: str) -> list[IPv4Address | IPv6Address]:
        found = [a for names, addresses in self.records.values() if name in names for a in addresses]
        if len(found) > 1:  # round robin: each answer starts one further
            k = next(self._turn) % len(found)
            found = found[k:] + found[:k]
        return found

    def _names_of(self, address: IPv4Address | IPv6Address) -> list[str]:
        return [names[0] for names, addresses in self.records.values() if names and address in addresses]

    def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        """The response, or None when the question is not this network's."""
        if len(query.question) != 1:
            return None
        question = query.question[0]
        qname = question.name.to_text(omit_final_dot=True).lower()
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if question.rdtype == dns.rdatatype.PTR:
            try:
                address = ip_address(dns.reversename.to_address(question.name))
            except (dns.exception.SyntaxError, ValueError):
                return None
            names = self._names_of(address)
            if not names:
                return None
            response.answer.append(dns.rrset.from_text(question.name, TTL, "IN", "PTR",
                                                       *(f"{n}.{self.search}." for n in names)))
            return response
        bare = qname.removesuffix("." + self.search)
        addresses = self._addresses(bare) if "." not in bare else []
        if not addresses:
            if qname.endswith("." + self.search) or qname == self.search:
                response.set_rcode(dns.rcode.NXDOMAIN)
                return response
            return None
        wanted = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 6}.get(question.rdtype)
        matching = [str(a) for a in addresses if a.version == wanted]
        if matching:
            response.answer.append(dns.rrset.from_text(question.name, TTL, "IN",
                                                       dns.rdatatype.to_text(question.rdtype), *matching))
        return response  # a name with no address of that family: NOERROR, no data
