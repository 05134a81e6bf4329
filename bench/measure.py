"""What the benchmarks measure the same way: a process's peak memory."""

from __future__ import annotations

import os
from pathlib import Path


def peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM), in MiB.

    Not ``getrusage().ru_maxrss``: Linux carries the parent's peak over into a child started by
    vfork and exec (as ``subprocess`` does), so a child would report at least its parent's peak.
    """
    status = Path("/proc/self/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return round(kib / 1024, 1)


def _descendants() -> list[int]:
    """The live processes started under this one (a Spark JVM and its Python workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def descendants_peak_mib() -> float:
    """The peak RSS (VmHWM) of every live process started under this one, summed, in MiB: an upper bound of
    their joint peak, as each may have peaked at another time."""
    total = 0
    for pid in _descendants():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return round(total / 1024, 1)


def descendants_cpu_seconds() -> float:
    """The CPU seconds (user and system, their own and their ended children's) of every live process started
    under this one: what a Spark JVM and its Python workers spent, whatever else ran on the machine."""
    ticks = 0
    for pid in _descendants():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return round(ticks / os.sysconf("SC_CLK_TCK"), 2)
