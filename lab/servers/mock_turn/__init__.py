"""The lab's own STUN/TURN server, with fault injection; a drop-in for coturn.

coturn reproduces a cloud TURN service's behaviour only partly (it cannot drop or
delay one method, fake expired credentials or a quota on demand); this server can,
and logs every request it handled so a scenario can show which fault bit.

Run: ``python -m lab.servers.mock_turn --config FILE.json [--verbose]``. It prints
exactly one line ``READY`` on stdout once every listener is bound, and exits 0 on
SIGTERM/SIGINT after closing every socket (exit 2: bad configuration, 1: a listener
could not be bound).

Configuration (JSON; unknown keys are errors)::

    {
      "listen": [{"address": "203.0.113.10", "port": 3478, "transport": "udp"},
                 {"address": "203.0.113.10", "port": 3478, "transport": "tcp"},
                 {"address": "203.0.113.10", "port": 443, "transport": "tls"}],
      "alternate": {"address": "203.0.113.11", "port": 3479},
      "relay_address": "203.0.113.10",
      "realm": "ice-lab",
      "auth": {"mode": "rest", "secret": "S"},
      "tls": {"cert": "/path/cert.pem", "key": "/path/key.pem"},
      "faults": {
        "forbid_peers": ["192.168.0.0/16", "10.0.0.0/8"],
        "credentials": "valid",
        "quota": 2,
        "drop": [{"method": "allocate", "transport": "udp"}],
        "delay": [{"method": "binding", "seconds": 2.0}]
      },
      "request_log": "/path/requests.jsonl",
      "lifetimes": {"allocation_default": 600, "allocation_max": 3600,
                    "permission": 300, "channel": 600}
    }

- ``listen``: the listeners (transport ``udp``, ``tcp`` or ``tls``); which ones exist is
  the scenario's "transports" fault. TCP and TLS carry STUN and padded ChannelData
  back to back (RFC 8656 section 12.5). No DTLS.
- ``alternate`` (optional): RFC 5780. Every UDP listener A:p gets sockets A:q, B:p and
  B:q too (B, q = alternate address, port); Binding answers carry RESPONSE-ORIGIN and
  OTHER-ADDRESS and honour CHANGE-REQUEST by answering from the other socket.
- ``relay_address``: where relayed UDP sockets are bound (ephemeral ports). Default:
  the first listener's address.
- ``auth.mode``: ``rest`` (TURN REST: username ``<expiry-epoch>:<id>``, password
  base64(HMAC-SHA1(secret, username)); expired usernames get 401), ``static``
  (``"users": {"name": "password"}``) or ``none`` (no authentication). Long-term
  credentials: MESSAGE-INTEGRITY key MD5(username:realm:password), nonces valid 600 s
  (then 438 Stale Nonce).
- ``tls``: certificate chain and key for ``tls`` listeners (whichever the lab chose,
  wrong-name or expired ones included).
- ``faults`` (all optional): ``forbid_peers`` CIDRs answered 403 "Forbidden IP" on
  CreatePermission/ChannelBind (loopback and private peers are allowed otherwise);
  ``credentials`` ``valid`` | ``wrong`` | ``expired`` (the last two: 401 to every
  authenticated request); ``quota`` N: allocation N+1 (server-wide, live ones) gets
  486; ``drop`` rules: never answer matching requests; ``delay`` rules: answer
  after ``seconds``. A rule is ``{"method": M, "transport": T}`` with T optional (any)
  and M one of binding, allocate, refresh, create_permission, channel_bind, send
  (client-to-peer relaying: Send indications and ChannelData), data (peer-to-client
  relaying).
- ``request_log`` (optional): JSON lines, flushed per line. One per request handled::

    {"t": 1732450000.1, "event": "request", "client": "ip:port", "transport": "udp",
     "method": "allocate", "outcome": "success" | "error" | "dropped",
     "error_code": 401 | 403 | 486 | ... | null, "reason": "Forbidden IP" | null,
     "fault": "forbid_peers" | "credentials" | "quota" | "drop" | "delay" | null,
     "peer": "ip:port" | null}

  Retransmissions answered from memory are not logged again; dropped ones are, each
  time. Relayed data is not logged per packet: when an allocation ends one line
  ``{"t", "event": "allocation_end", "client", "transport", "method": null, "relay",
  "end": "expired" | "deleted" | "closed" | "shutdown", "counts": {...}}`` gives the
  counts (send_indications, channel_data_to_peer, data_indications,
  channel_data_to_client, *_no_permission, *_dropped_by_fault).
- ``lifetimes`` (optional): RFC 8656 timers in seconds, shortened to watch expiry.

Not supported (coturn does these): DTLS (``turnutils_uclient -S`` without ``-t``), TCP
relays (RFC 6062: REQUESTED-TRANSPORT TCP gets 442), IPv6 (440/443), EVEN-PORT and
RESERVATION-TOKEN (accepted and ignored: any free port), oAuth, mobility, bandwidth.
Channel numbers 0x4000-0x7FFF are accepted (RFC 5766's range, as coturn does; RFC 8656
narrowed it to 0x4FFF) because turnutils_uclient picks numbers above 0x4FFF.
"""

from .config import ConfigError, ServerConfig, config_from_dict, load_config
from .server import MockTurnServer

__all__ = ["ConfigError", "MockTurnServer", "ServerConfig", "config_from_dict", "load_config"]
