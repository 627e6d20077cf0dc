"""Hands-on mode: `lab up`, `lab exec`, `lab status`, `lab down`.

`lab up SCENARIO` starts a detached daemon (`python -m lab.run.hands_on`) that builds the
scenario's network and servers, writes a state file and stays until SIGTERM (or
SIGINT), when it tears everything down and removes the state file. One network is up
at a time; a file lock serialises `lab up`, `lab down` and `lab clean`.

Everything the daemon starts (Mininet shells, servers) and everything `lab exec`
starts carries `ICELAB_UP=<token>` in its environment, so what a crashed daemon left
is found by that mark (and by the recorded shells' pid and start time), never by a
pattern over process names. A daemon that died leaves a stale state file: the next
`lab up`, `lab down` or `lab clean` notices it and removes what it left.

Modules, one job each (the commands themselves are lab/commands/hands_on.py):
  launch     starting the daemon and waiting until its network is up
  daemon     the daemon itself: builds the network and servers and holds them
  teardown   stopping a network, purging what a dead daemon left (also for `lab clean`)
  state      the state file and the lock
  processes  telling a live daemon from a dead one; finding a network's processes
  display    what `lab up` and `lab status` print
"""
