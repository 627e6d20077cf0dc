"""STUN/TURN wire helpers on top of aioice's codec.

aioice's `stun` module parses and builds messages; this module adds what a *server*
needs and aioice's client does not: a few more attribute types, ChannelData framing,
every value of a repeated attribute, and the comprehension-required attributes we do
not understand (to answer 420 as RFC 8489 section 7.3.1 requires).
"""

from __future__ import annotations

import struct

from aioice import stun

from lab.core.documents import JsonObject


def _pack_attribute_types(value: list[int]) -> bytes:
    return b"".join(struct.pack("!H", t) for t in value)


def _unpack_attribute_types(data: bytes) -> list[int]:
    return [struct.unpack("!H", data[i : i + 2])[0] for i in range(0, len(data) - 1, 2)]


def _pack_family(value: int) -> bytes:
    return bytes([value, 0, 0, 0])


def _unpack_family(data: bytes) -> int:
    return data[0] if data else 0


def _pack_even_port(value: bool) -> bytes:
    return bytes([0x80 if value else 0])


def _unpack_even_port(data: bytes) -> bool:
    return bool(data and data[0] & 0x80)


# --- Extension of aioice's attribute table (the only place we touch aioice) --------------
# aioice 0.13 already knows CHANGE-REQUEST (0x0003), RESPONSE-ORIGIN (0x802B) and
# OTHER-ADDRESS (0x802C). A TURN server also meets these in requests from coturn's own
# clients (turnutils_uclient sends EVEN-PORT / RESERVATION-TOKEN / DONT-FRAGMENT,
# turnutils_stunclient RESPONSE-PORT, natdiscovery -P PADDING) and must send
# UNKNOWN-ATTRIBUTES with a 420.
# Entries are only added when aioice lacks the type, so a newer aioice wins.
EXTRA_ATTRIBUTES: list[stun.AttributeEntry] = [
    (0x000A, "UNKNOWN-ATTRIBUTES", _pack_attribute_types, _unpack_attribute_types),
    (0x0017, "REQUESTED-ADDRESS-FAMILY", _pack_family, _unpack_family),
    (0x0018, "EVEN-PORT", _pack_even_port, _unpack_even_port),
    (0x001A, "DONT-FRAGMENT", stun.pack_none, stun.unpack_none),
    (0x0022, "RESERVATION-TOKEN", stun.pack_bytes, stun.unpack_bytes),
    (0x0026, "PADDING", stun.pack_bytes, stun.unpack_bytes),
    (0x0027, "RESPONSE-PORT", stun.pack_unsigned_short, stun.unpack_unsigned_short),
]
for _entry in EXTRA_ATTRIBUTES:
    if _entry[0] not in stun.ATTRIBUTES_BY_TYPE and _entry[1] not in stun.ATTRIBUTES_BY_NAME:
        stun.ATTRIBUTES.append(_entry)
        stun.ATTRIBUTES_BY_TYPE[_entry[0]] = _entry
        stun.ATTRIBUTES_BY_NAME[_entry[1]] = _entry
# ------------------------------------------------------------------------------------------

SOFTWARE = "ice-lab mock_turn"
UDP_PROTOCOL = 17
IPV4_FAMILY = 0x01
CHANNEL_MIN = 0x4000
# RFC 8656 narrowed channels to 0x4FFF; RFC 5766's 0x7FFF is kept because coturn accepts
# it and turnutils_uclient picks numbers up there.
CHANNEL_MAX = 0x7FFF
STUN_HEADER = 20

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden IP",
    420: "Unknown Attribute",
    437: "Allocation Mismatch",
    438: "Stale Nonce",
    440: "Address Family not Supported",
    441: "Wrong Credentials",
    442: "Unsupported Transport Protocol",
    443: "Peer Address Family Mismatch",
    486: "Allocation Quota Reached",
    508: "Insufficient Capacity",
}

METHOD_NAMES = {
    stun.Method.BINDING: "binding",
    stun.Method.ALLOCATE: "allocate",
    stun.Method.REFRESH: "refresh",
    stun.Method.CREATE_PERMISSION: "create_permission",
    stun.Method.CHANNEL_BIND: "channel_bind",
    stun.Method.SEND: "send",
    stun.Method.DATA: "data",
}


def is_channel_data(data: bytes) -> bool:
    """ChannelData starts with 0b01 (channel 0x4000-0x7FFF); STUN starts with 0b00."""
    return len(data) >= 4 and (data[0] & 0xC0) == 0x40


def is_stun(data: bytes) -> bool:
    return len(data) >= STUN_HEADER and (data[0] & 0xC0) == 0


def pack_channel_data(channel: int, payload: bytes, pad: bool) -> bytes:
    """ChannelData; over TCP/TLS it is padded to 4 bytes (RFC 8656 section 12.5)."""
    data = struct.pack("!HH", channel, len(payload)) + payload
    if pad:
        data += bytes(stun.padding_length(len(payload)))
    return data


def unpack_channel_data(data: bytes) -> tuple[int, bytes] | None:
    """(channel, payload), or None when the length field claims more than we have."""
    channel, length = struct.unpack("!HH", data[0:4])
    if len(data) < 4 + length:
        return None
    return channel, data[4 : 4 + length]


def frame_length(buffer: bytes) -> int | None:
    """Length of the first STUN message or padded ChannelData in a stream buffer.

    None: not enough bytes to know yet. Raises ValueError for bytes that are neither.
    """
    if len(buffer) < 4:
        return None
    length = struct.unpack("!H", buffer[2:4])[0]
    if is_channel_data(buffer):
        return 4 + length + stun.padding_length(length)
    if buffer[0] & 0xC0 == 0:
        return STUN_HEADER + length
    raise ValueError("neither STUN nor ChannelData on a stream")


def raw_attributes(data: bytes) -> list[tuple[int, bytes]]:
    """Every (type, value) of a STUN message in order, repeats included."""
    out = []
    pos = STUN_HEADER
    while pos + 4 <= len(data):
        attr_type, attr_len = struct.unpack("!HH", data[pos : pos + 4])
        out.append((attr_type, data[pos + 4 : pos + 4 + attr_len]))
        pos += 4 + attr_len + stun.padding_length(attr_len)
    return out


def xor_peer_addresses(data: bytes, transaction_id: bytes) -> list[tuple[str, int]]:
    """All XOR-PEER-ADDRESS values: aioice's dict keeps only the last one, but a
    CreatePermission may carry several (RFC 8656 section 9)."""
    return [
        stun.unpack_xor_address(value, transaction_id)
        for attr_type, value in raw_attributes(data)
        if attr_type == 0x0012
    ]


def unknown_required_attributes(data: bytes) -> list[int]:
    """Comprehension-required types (< 0x8000) that aioice's table does not know."""
    return [
        attr_type
        for attr_type, _ in raw_attributes(data)
        if attr_type < 0x8000 and attr_type not in stun.ATTRIBUTES_BY_TYPE
    ]


def response_for(request: stun.Message, attributes: JsonObject | None = None) -> stun.Message:
    """A success response to `request`, with the same transaction id."""
    message = stun.Message(request.message_method, stun.Class.RESPONSE, request.transaction_id)
    message.attributes.update(attributes or {})
    message.attributes["SOFTWARE"] = SOFTWARE
    return message


def error_for(request: stun.Message, code: int, reason: str | None = None) -> stun.Message:
    """An error response to `request` with ERROR-CODE `code`."""
    message = stun.Message(request.message_method, stun.Class.ERROR, request.transaction_id)
    message.attributes["ERROR-CODE"] = (code, reason or REASONS.get(code, "Error"))
    message.attributes["SOFTWARE"] = SOFTWARE
    return message


def finish(message: stun.Message, key: bytes | None, fingerprint: bool) -> bytes:
    """Sign with MESSAGE-INTEGRITY when a key is known, add FINGERPRINT when asked."""
    if key is not None:
        message.add_message_integrity(key)  # also adds FINGERPRINT
        if not fingerprint:
            message.attributes.pop("FINGERPRINT", None)
    elif fingerprint:
        message.add_fingerprint()
    return bytes(message)


def format_address(address: tuple[str, int] | None) -> str | None:
    return None if address is None else f"{address[0]}:{address[1]}"
