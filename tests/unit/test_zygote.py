"""The zygote (lab/core/zygote.py) forks programs with their own stdout and stderr, and
survives a preload that cannot be imported."""

from __future__ import annotations

import os

import pytest

from lab.core.zygote import ForkedProcess, Zygote

pytestmark = pytest.mark.root  # the forked program enters a network namespace (setns)


def test_a_forked_program_writes_to_the_pipe_it_was_given_and_exits() -> None:
    zygote = Zygote(["json", "a_module_that_does_not_exist"])
    read_end, write_end = os.pipe()
    try:
        pid = zygote.fork(
            os.getpid(), "builtins:print", ["READY from the zygote"], stdout=write_end, stderr=2
        )
        os.close(write_end)
        process = ForkedProcess(pid, ["builtins:print"])
        assert process.wait(timeout=10) == 0
        with os.fdopen(read_end, "rb") as output:
            assert output.read() == b"READY from the zygote\n"
    finally:
        zygote.channel.close()  # the zygote ends with its socket
        os.waitpid(zygote.pid, 0)
