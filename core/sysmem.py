"""Handing freed memory back to the system.

glibc keeps the pages of freed heap memory mapped until it is asked to give them back, so a process
that parsed, ruled and dropped a few hundred megabytes of transient data keeps showing them as
resident. :func:`release_free_memory` asks (``malloc_trim``); elsewhere (macOS, musl) it does nothing.
"""
from __future__ import annotations

import ctypes
import sys
from typing import Any

_TRIM: Any = None


def _trim_fn() -> Any:
    global _TRIM
    if _TRIM is None:
        _TRIM = False
        if sys.platform.startswith("linux"):
            try:
                fn = ctypes.CDLL(None).malloc_trim   # the C library the interpreter runs on
            except (OSError, AttributeError):        # not glibc (musl has no malloc_trim)
                fn = None
            if fn is not None:
                fn.argtypes = [ctypes.c_size_t]
                fn.restype = ctypes.c_int
                _TRIM = fn
    return _TRIM


def release_free_memory() -> bool:
    """Return freed heap pages to the system (the interpreter lock is released meanwhile); False
    where the C library offers no way to."""
    fn = _trim_fn()
    if not fn:
        return False
    fn(0)
    return True
