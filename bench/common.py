"""Shared helpers of the bench scripts: the generated log file, timing, machine facts, reporting.

Every script prints the command that produced its numbers, then medians with min-max over the runs.
Wall time and CPU time (this process and its children) are both given: on a shared machine the CPU
time is the steadier of the two.
"""
from __future__ import annotations

import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
GEN = REPO.parent / "shared" / "tools" / "gen_s3_access_logs.py"
DATA = BENCH / "data"


def command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])


def header(title: str, cmd: str | None = None) -> None:
    print(f"# {title}")
    print(f"command: {cmd or command()}")
    print(f"machine: {machine()}")
    print(f"load average at start: {load()}")


def machine() -> str:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    from s3tail.core import access_log
    return (f"{os.cpu_count()} cpus ({model}), {mem:.1f} GiB, Python {sys.version.split()[0]}, "
            f"C parser {'on' if access_log.SPEEDUPS else 'off'}")


def load() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def data_file(lines: int = 1_000_000, seed: int = 1) -> Path:
    """``bench/data/gen-s{seed}-{lines}.log`` from ../shared/tools/gen_s3_access_logs.py, made once."""
    path = DATA / f"gen-s{seed}-{lines}.log"
    if not path.exists():
        if not GEN.is_file():
            sys.exit(f"bench: {GEN} not found (needed to generate {path.name})")
        DATA.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        subprocess.run([sys.executable, str(GEN), "--lines", str(lines), "--seed", str(seed), "-o", str(tmp)],
                       check=True)
        tmp.rename(path)
    return path


def cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class Timer:
    """``with Timer() as t: ...`` then ``t.wall``, ``t.cpu`` (seconds)."""

    def __enter__(self) -> "Timer":
        self.w0, self.c0 = time.perf_counter(), cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w0, cpu() - self.c0


def spread(values: list[float], fmt: str = "{:.3f}", unit: str = "") -> str:
    """``median (min-max)``."""
    med = statistics.median(values)
    return f"{fmt.format(med)}{unit} (min {fmt.format(min(values))}, max {fmt.format(max(values))}, n={len(values)})"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def need_store():
    """``s3tail.core.store.EventStore``, or exit with a clear message."""
    try:
        from s3tail.core.store import EventStore
    except ImportError as exc:
        sys.exit(f"bench: the columnar store (s3tail.core.store.EventStore) is not available: {exc}")
    return EventStore


def load_store(path: Path, rows: int | None = None):
    """A store holding the events of ``path`` (parsed in this process, no rules)."""
    EventStore = need_store()
    from s3tail.core.event import Event
    from s3tail.core.ingest import iter_batches
    store = EventStore(max_rows=rows or 10_000_000)
    for batch in iter_batches([str(path)], workers=1):
        store.append_batch([i for i in batch if type(i) is Event])
    return store
