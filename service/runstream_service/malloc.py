"""glibc malloc settings for a server whose reads make large, short-lived NumPy arrays.

By default glibc serves each allocation above 128 KiB (adjusted upwards as they are freed) with
its own mmap and unmaps it when freed, so every read pays page faults again for its temporary
arrays: on virtual machines, where faults are dear, a 100-run overlay spent a third of its time
there (measured: 150 ms down to about 100 ms). Arrays up to 32 MiB then come from the heap, and up
to 256 MiB of freed heap is kept for the next read instead of being handed back at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit systems
TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Apply the settings; False where the C library is not glibc (nothing changes then)."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
