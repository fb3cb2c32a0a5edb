"""Timing a command from outside, for the benchmarks: wall time, each output line's arrival, CPU seconds by role."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import kill_group  # the one implementation, shared with the tests

ROOT = Path(__file__).resolve().parent.parent

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Timed:
    seconds: float
    returncode: int
    lines: list[tuple[float, str]] = field(default_factory=list)
    cpu: dict[str, tuple[float, int]] = field(default_factory=dict)  # role -> (CPU seconds, processes)
    cpu_series: list[tuple[float, float]] = field(default_factory=list)  # (seconds since launch, CPU-s so far)
    machine_cpu: float = 0.0  # CPU seconds the whole machine spent meanwhile, ours and everyone else's
    steal: float = 0.0  # of which taken by the hypervisor for other machines (this one is virtual)
    drained: float = 0.0  # seconds until the output closed: the process and everything it started holding it

    @property
    def own_cpu(self) -> float:
        return sum(seconds for seconds, _ in self.cpu.values())

    def others_busy(self) -> float:
        """Cores the rest of the machine kept busy on average meanwhile: the machine is shared, so a slow run
        may not be our fault."""
        return max(0.0, self.machine_cpu - self.steal - self.own_cpu) / self.seconds

    def contention(self) -> str:
        return (f"{self.own_cpu:.0f} CPU-s own, others busy {self.others_busy():.2f} cores on average, "
                f"{self.steal:.1f} s stolen by the hypervisor")

    def cpu_at(self, t: float) -> float:
        """CPU seconds the command's processes had used by `t` seconds after launch (the last sample before)."""
        return max((cpu for at, cpu in self.cpu_series if at <= t), default=0.0)

    def cores_used(self, start: float, end: float) -> float:
        """How many cores the command kept busy on average between two moments: near the core count, it was
        computing; well below, it was waiting (for a process to start, a port to answer, a sleep)."""
        return (self.cpu_at(end) - self.cpu_at(start)) / (end - start) if end > start else 0.0

    def first(self, needles: tuple[str, ...]) -> float | None:
        return next((t for t, line in self.lines if all(n in line for n in needles)), None)

    def tail(self, n: int = 30) -> str:
        return "\n".join(line for _, line in self.lines[-n:])


class CpuSampler(threading.Thread):
    """CPU seconds of a process tree by role, sampled from /proc (the last sample of each process counts)."""

    def __init__(self, root_pid: int, interval: float = 0.25, start: float | None = None) -> None:
        super().__init__(daemon=True)
        self.root_pid, self.interval = root_pid, interval
        self.start_time = time.perf_counter() if start is None else start
        self.stop = threading.Event()
        self.cpu: dict[int, float] = {}
        self.roles: dict[int, str] = {}
        self.series: list[tuple[float, float]] = []  # (seconds since start, CPU seconds of the tree so far)

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        table = proc_table()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        todo = [self.root_pid]
        while todo:
            pid = todo.pop()
            if pid in table:
                self.cpu[pid] = table[pid][1]
                self.roles.setdefault(pid, self.role(pid))
                todo.extend(children.get(pid, []))
        self.series.append((time.perf_counter() - self.start_time, sum(self.cpu.values())))

    def role(self, pid: int) -> str:
        if pid == self.root_pid:
            return "driver"
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return "other"
        if "uvicorn" in cmd:
            return "prefect api"
        if "Agent" in cmd:  # ray::DashboardAgent, ray::RuntimeEnvAgent: per-node services, not workers
            return "ray system"
        if "ray::" in cmd or "default_worker" in cmd:
            return "ray workers"
        return "ray system" if "ray" in cmd else "other"

    def by_role(self) -> dict[str, tuple[float, int]]:
        """role -> (CPU seconds, number of processes)."""
        totals: dict[str, tuple[float, int]] = {}
        for pid, seconds in self.cpu.items():
            cpu, count = totals.get(self.roles[pid], (0.0, 0))
            totals[self.roles[pid]] = (cpu + seconds, count + 1)
        return totals


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent not idle since boot, steal included (/proc/stat)."""
    fields = _cpu_fields()
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS  # guest time is already counted in user


def machine_steal_seconds() -> float:
    """CPU seconds the hypervisor has given to other virtual machines since boot (/proc/stat)."""
    return _cpu_fields()[7] / CLOCK_TICKS


def _cpu_fields() -> list[int]:
    with open("/proc/stat") as f:
        return [int(v) for v in f.readline().split()[1:]]


def proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, user + system CPU seconds so far) for every process readable now."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # the command name may contain spaces
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return table


def run_timed(cmd: list[str], env: dict[str, str], timeout: float, cwd: Path = ROOT) -> Timed:
    """Run `cmd` in `cwd`; its own process group, so a timeout ends it and everything it started. `seconds` is
    when its process exited; its output is read on until it closes (`drained`)."""
    start, busy, steal = time.perf_counter(), machine_busy_seconds(), machine_steal_seconds()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1, start_new_session=True)
    timer = threading.Timer(timeout, kill_group, (proc.pid,))
    sampler = CpuSampler(proc.pid, start=start)
    timer.start()
    sampler.start()
    lines: list[tuple[float, str]] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append((time.perf_counter() - start, line.rstrip()))

    # the command has ended when its own process exits (a shell prompt returns then); what it started may hold
    # the output open a little longer while it stops (Ray's daemons): read on, but time the process's exit
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait()
        seconds = time.perf_counter() - start
        reader.join(timeout=60)
        drained = time.perf_counter() - start
    finally:
        timer.cancel()
        sampler.stop.set()
        sampler.join()
    return Timed(seconds, proc.returncode, lines, sampler.by_role(), sampler.series,
                 machine_busy_seconds() - busy, machine_steal_seconds() - steal, drained)
