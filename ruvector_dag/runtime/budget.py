"""The worker's CPU: its token budget for learning, and the /proc probes of the machine's idle CPU.

The budget is ``ruvector.dag_worker_cpu_percent`` of one CPU, a token bucket
of CPU seconds: while tokens last, records are read and learned; when they
run out, records are consumed in C without being copied, except those of
queries being steered, which are still learned from until the debt reaches
PRIORITY_DEBT_S (see :meth:`ruvector_dag.runtime.worker.Worker.drain`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

#: Most CPU seconds of learning the budget can save up while the server is idle (a burst allowance).
TOKENS_MAX_S = 0.1
#: How far into debt the budget goes for the statements of queries being steered.
PRIORITY_DEBT_S = 0.5
#: Running mean CPU seconds per learned record the budget starts from (sizes the reads).
INITIAL_COST_S = 2e-4
#: Idle CPUs are averaged over this time constant (a gap between two bursts of load is not idleness).
IDLE_TAU_S = 2.0


class CpuBudget:
    """A token bucket of CPU seconds of learning, refilled at ``share`` CPU seconds per second."""

    def __init__(self, cost_s: float = INITIAL_COST_S) -> None:
        if not cost_s > 0.0:
            raise ValueError(f"cost_s must be > 0, not {cost_s}")
        self.tokens = 0.0  # CPU seconds of learning the budget allows now
        self.cost_s = cost_s  # running mean CPU seconds per learned record (sizes the reads)
        self.last_refill = 0.0  # monotonic time of the last refill (the previous drain)

    def refill(self, now: float, share: float) -> float:
        """Add the tokens earned since the last refill; return the seconds elapsed since."""
        elapsed = now - self.last_refill
        self.tokens = min(self.tokens + elapsed * share, TOKENS_MAX_S)
        self.last_refill = now
        return elapsed

    @property
    def available(self) -> bool:
        """Whether records may be read and learned from now."""
        return self.tokens > 0.0

    @property
    def priority_allowed(self) -> bool:
        """Whether steered queries' records are still learned from (the debt is below PRIORITY_DEBT_S)."""
        return self.tokens > -PRIORITY_DEBT_S

    def read_size(self, read_max: int) -> int:
        """Records to read now: as many as the tokens pay for, at least one, at most ``read_max``."""
        return int(min(read_max, max(1.0, self.tokens / self.cost_s)))

    def charge(self, seconds: float) -> None:
        self.tokens -= seconds

    def learned(self, spent: float, records: int) -> None:
        """``records`` were learned from in ``spent`` CPU seconds: charge them and follow the cost."""
        self.tokens -= spent
        self.cost_s = 0.9 * self.cost_s + 0.1 * max(spent / records, 1e-6)


def idle_cpus(before: tuple[float, float] | None, after: tuple[float, float] | None, ncpu: int) -> float:
    """CPUs idle on average between two readings of :func:`machine_cpu` (all of them when unknown)."""
    if before is None or after is None or after[0] <= before[0]:
        return float(ncpu)
    return ncpu * (after[1] - before[1]) / (after[0] - before[0])


def machine_cpu() -> tuple[float, float] | None:
    """(all, idle) CPU time of the machine from /proc/stat (Linux), in jiffies; None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields[:8]), fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait


def run_delay() -> float | None:
    """Seconds this process has waited for a CPU while runnable (Linux), or None."""
    try:
        with open("/proc/self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class IdleCpuProbe:
    """Idle CPUs of the machine, smoothed over IDLE_TAU_S (the readings are injectable for tests)."""

    def __init__(self, read_cpu: Callable[[], tuple[float, float] | None] = machine_cpu,
                 cpu_count: Callable[[], int | None] = os.cpu_count) -> None:
        self.read_cpu = read_cpu
        self.cpu_count = cpu_count
        self.cpu_times: tuple[float, float] | None = None  # (all, idle) CPU seconds at the last reading
        self.average = 0.0  # idle CPUs, smoothed over IDLE_TAU_S
        self.at = 0.0  # monotonic time of that estimate

    def update(self, now: float) -> float:
        """Take a reading; return the smoothed idle CPUs."""
        cpu_times = self.read_cpu()
        ncpu = self.cpu_count() or 1
        if cpu_times is None or self.cpu_times is None:
            self.average = idle_cpus(None, None, ncpu)  # unknown: idle (not Linux), or the first reading
        else:
            alpha = 1.0 - math.exp(-max(now - self.at, 0.0) / IDLE_TAU_S)
            self.average += alpha * (idle_cpus(self.cpu_times, cpu_times, ncpu) - self.average)
        self.cpu_times, self.at = cpu_times, now
        return self.average
