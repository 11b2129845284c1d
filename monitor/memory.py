"""The daemon's native memory: glibc's malloc told to keep fewer arenas (wiring layer).

glibc gives each new thread its own malloc arena (up to eight per core), and
memory freed in one arena serves only the threads that use it: a daemon whose
thread pool grows as jobs overlap ends up holding several half-empty heaps.
:func:`limit_arenas`, called at start before any thread, caps them with
``mallopt(M_ARENA_MAX)``, what ``MALLOC_ARENA_MAX`` in the environment does
(the systemd unit sets that: glibc reads it only at process start; an
explicit variable wins). Through ctypes; a no-op where there is no glibc
(musl, macOS). The measurements are in bench/README.md ("Daemon soak").
"""

from __future__ import annotations

import ctypes
import os
import sys
from functools import cache
from typing import Any

ARENAS = 2  # what MALLOC_ARENA_MAX=2 in the unit says
_M_ARENA_MAX = -8  # glibc's malloc.h


@cache
def _glibc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded in this process
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version")):
        return None  # not glibc
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas, unless ``MALLOC_ARENA_MAX`` already did; True if set."""
    libc = _glibc()
    if libc is None or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, arenas))
