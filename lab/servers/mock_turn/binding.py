"""STUN Binding (RFC 8489) with the RFC 5780 attributes when the server has them.

Both XOR-MAPPED-ADDRESS and MAPPED-ADDRESS are sent, as coturn does: RFC 5780 clients
compare them to detect address-rewriting ALGs ("No ALG: Mapped == XOR-Mapped").
"""

from __future__ import annotations

from dataclasses import dataclass

from aioice import stun

from . import codec
from .rfc5780 import Address, Quartet


@dataclass(frozen=True)
class BindingAnswer:
    """The response, the local socket it must leave from and where it goes."""

    message: stun.Message
    origin: Address
    destination: Address


def answer_binding(
    request: stun.Message,
    client: Address,
    local: Address,
    quartet: Quartet | None,
    stream: bool,
) -> BindingAnswer:
    """Answer a Binding request that arrived on `local` from `client`.

    CHANGE-REQUEST needs the RFC 5780 sockets (else 420 Unknown Attribute) and UDP
    (over TCP or TLS another socket cannot answer: 400). RESPONSE-PORT (RFC 5780
    section 7.5, UDP only) sends the answer to another port of the client's address.
    """
    change = int(request.attributes.get("CHANGE-REQUEST", 0)) & 0x06
    if change and stream:
        return BindingAnswer(
            codec.error_for(request, 400, "CHANGE-REQUEST over TCP"), local, client
        )
    if change and quartet is None:
        error = codec.error_for(request, 420)
        error.attributes["UNKNOWN-ATTRIBUTES"] = [0x0003]
        return BindingAnswer(error, local, client)
    attributes = {"XOR-MAPPED-ADDRESS": client, "MAPPED-ADDRESS": client}
    origin = local
    if quartet is not None and not stream:
        origin = quartet.response_origin(local, change)
        attributes["RESPONSE-ORIGIN"] = origin
        attributes["OTHER-ADDRESS"] = quartet.other_address(local)
    destination = client
    if "RESPONSE-PORT" in request.attributes and not stream:
        destination = (client[0], int(request.attributes["RESPONSE-PORT"]))
    return BindingAnswer(codec.response_for(request, attributes), origin, destination)
