"""Log record ids: unique in a process without a system call each, new in a forked child."""

from __future__ import annotations

import os

from aitrading.core.logging.record_ids import new_record_id
from aitrading.core.logging.records import LogRecord


def test_ids_are_unique_and_keep_their_shape() -> None:
    ids = [new_record_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids[:100])
    assert LogRecord(ts_ms=0, level="INFO", service="s", message="m").record_id != ids[-1]


def test_a_forked_child_draws_its_own_prefix() -> None:
    parent = new_record_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_record_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert len(child) == 32
    assert child[:16] != parent[:16]  # same counter position, different process prefix
