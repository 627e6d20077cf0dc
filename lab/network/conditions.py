"""What the scenario puts on one node: its NAT, firewall, impairments and NAT64."""

from __future__ import annotations

from dataclasses import dataclass

from lab.core.documents import JsonObject
from lab.network.firewall import FirewallPolicy
from lab.network.impairments import Impairments
from lab.network.nat import NatBehaviour


@dataclass(frozen=True)
class NodeConditions:
    nat: NatBehaviour | None = None
    firewall: FirewallPolicy | None = None
    #: One entry per impaired interface: a router or NAT can impair several links.
    impairments: tuple[Impairments, ...] = ()
    #: The scenario gave a list (not one object): shown, and named in errors, as a list.
    impairments_listed: bool = False
    #: NAT64 with DNS64 for the IPv6-only hosts behind the node (lab.network.ipv6).
    nat64: bool = False

    def impairment_fields(self) -> list[tuple[str, Impairments]]:
        """Each impairment with its scenario field (`impairments[1]`, or `impairments` for
        the single object), so messages name what the user wrote."""
        if not self.impairments_listed:
            return [("impairments", i) for i in self.impairments]
        return [(f"impairments[{n}]", i) for n, i in enumerate(self.impairments)]

    def describe_impairments(self) -> JsonObject | list[JsonObject] | None:
        """The impairments in the form the scenario used: one object, a list, or None."""
        docs = [i.describe() for i in self.impairments]
        if self.impairments_listed:
            return docs
        return docs[0] if docs else None
