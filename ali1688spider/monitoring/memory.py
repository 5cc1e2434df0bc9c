"""Keep the C heap from holding on to what a long crawl has freed.

Python hands blocks over 512 bytes (reply bodies, BSON batches, big dict tables) to the C
allocator. glibc's malloc raises its mmap and trim thresholds each time a large block is freed,
after which freed memory stays inside the process and RSS keeps the high-water mark of every
burst; the Mongo writer's thread also gets an arena of its own. Fixed thresholds (128 KiB) and at
most two arenas — what ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` and
``MALLOC_ARENA_MAX`` would set before the process starts — give large blocks back when they are
freed: in a 150,000-id crawl the C heap held 36 MB (12 MB of it free) without them and 21 MB
(none free) with them (bench/RESULTS.md, "Memory at a million ids").

Set when the crawler is made, before the crawl allocates; a no-op where the C library is not
glibc.

The peak (``memusage/startup``, ``memusage/max`` and the ``MEMUSAGE_LIMIT_MB`` check) is read
from the kernel's high-water mark of this process (``VmHWM``). Scrapy's own extension reads
``getrusage``'s ``ru_maxrss``, which on Linux keeps the parent's resident size from before the
``exec``: a crawl started by a process holding 190 MB (scrapyd, a benchmark driver, a notebook)
reported 190 MB from its first second (bench/RESULTS.md, "Memory at a million ids").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from pathlib import Path

from scrapy.crawler import Crawler
from scrapy.extensions import memusage

logger = logging.getLogger(__name__)

# mallopt() parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
THRESHOLD = 128 * 1024
ARENAS = 2


def tune_malloc() -> bool:
    """Fix glibc's thresholds and arena count; False where there is no glibc ``mallopt``."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    return all(mallopt(param, value) == 1 for param, value in (
        (M_MMAP_THRESHOLD, THRESHOLD), (M_TRIM_THRESHOLD, THRESHOLD), (M_ARENA_MAX, ARENAS)))


class MallocTuning:
    """An extension only so that every crawl (``scrapy crawl``, scrapyd) runs :func:`tune_malloc`."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MallocTuning:
        if not tune_malloc():
            logger.debug("malloc not tuned: no glibc mallopt")
        return cls()


def peak_bytes(status: Path = Path("/proc/self/status")) -> int | None:
    """This process's peak resident size (``VmHWM``) in bytes; None without procfs."""
    try:
        with status.open() as lines:
            for line in lines:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class MemoryUsage(memusage.MemoryUsage):
    """Scrapy's MemoryUsage (stats, warning, limit), measuring this process only: ``VmHWM``
    where procfs has it, else ``ru_maxrss`` as Scrapy does."""

    def get_virtual_size(self) -> int:
        peak = peak_bytes()
        return peak if peak is not None else super().get_virtual_size()
