"""Unique ids for log records without a system call per record.

An id was 16 bytes from `os.urandom`: a `getrandom` call per record that releases the GIL, so
with the router's writer thread busy, every logging call handed the GIL over and waited to get
it back (15 % of the log router benchmark's samples, more than the redaction). An id is now
this process's random prefix (8 bytes, drawn once, and again in a forked child) followed by a
counter: unique within a process by construction, and across processes as long as two never
draw the same 64-bit prefix.
"""

from __future__ import annotations

import itertools
import os

_prefix = ""
_counter = itertools.count()


def _new_process() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count()


_new_process()
os.register_at_fork(after_in_child=_new_process)


def new_record_id() -> str:
    """32 hex digits, as before: the prefix, then the counter."""
    return f"{_prefix}{next(_counter):016x}"
