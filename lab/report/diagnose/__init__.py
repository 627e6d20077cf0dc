"""`lab diagnose`: from a customer's log to a reproduced network.

The support engineer's day starts with an artifact, not a scenario. This package reads
one (`sniff` picks the reader: the KVS C SDK's log or the lab's `--log kvs` output, the
JS SDK sample's console log, a chrome://webrtc-internals dump or the lab's Chromium peer
report), turns it into findings that each name the line they came from (`findings`),
sums them up per peer (`facts`), infers the network conditions with a small documented
rule table (`rules`), writes a scenario that should reproduce them (`scenario_writer`)
and, after a run, says field by field whether it did (`verdict`). `command` registers
`lab diagnose` on the CLI.
"""

from __future__ import annotations
