"""What the benchmarks measure the same way: a process's peak memory."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM), in MiB.

    Not ``getrusage().ru_maxrss``: Linux carries the parent's peak over into a child started by
    vfork and exec (as ``subprocess`` does), so a child would report at least its parent's peak.
    """
    status = Path("/proc/self/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return round(kib / 1024, 1)
