"""Freed memory goes back to the system (what an operator sees as resident)."""
from __future__ import annotations

import sys


def _rss() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS"))


def test_freed_heap_memory_goes_back_to_the_system():
    from s3tail.core.sysmem import release_free_memory

    if not sys.platform.startswith("linux"):  # no malloc_trim there: it says so, and does nothing
        assert release_free_memory() is False
        return

    # ~120 MB of heap blocks below glibc's mmap threshold, freed while a later block stays: glibc
    # keeps the freed pages resident until asked
    blocks = [bytes(60_000) + bytes([i % 256]) for i in range(2000)]
    pin = bytes(60_000) + b"x"
    del blocks
    before = _rss()
    assert release_free_memory(), "glibc's malloc_trim was not found"
    assert before - _rss() > 60 * 2**20
    assert pin
