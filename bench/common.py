"""Shared helpers for runbookd's benchmarks: processes, pinning, /proc readings."""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
BINARY = os.environ.get("RUNBOOKD_BIN", os.path.join(ROOT, "build", "daemon", "runbookd"))
SECRET = "bench-signing-secret"


def build():
    subprocess.run([os.path.join(ROOT, "scripts", "build"), "build", "--", "runbookd"], check=True,
                   stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 10.0) -> float:
    """Polls url until it answers 2xx; returns the time it took. Bounded by timeout."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if 200 <= r.status < 300:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.0005)
    raise TimeoutError(f"{url} not ready within {timeout}s")


def proc_status(pid: int, key: str) -> int:
    """A /proc/PID/status field in KiB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(values):
    return statistics.median(values)


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB"


def start_runbookd(config_text: str, workdir: str, cpu="0", extra_env=None):
    """Starts runbookd pinned to `cpu` (None: unpinned, as for start-up timing)."""
    path = os.path.join(workdir, "runbookd.yaml")
    if not any(line.startswith("store:") for line in config_text.splitlines()):
        # A fresh journal per start (on disk, as in production): never /var/lib/runbookd,
        # and never a previous run's incidents.
        state = tempfile.mkdtemp(prefix="state-", dir=workdir)
        config_text += f"\nstore:\n  dir: {state}\n"
    with open(path, "w") as f:
        f.write(config_text)
    env = dict(os.environ, RUNBOOKD_BENCH_SECRET=SECRET, **(extra_env or {}))
    log = open(os.path.join(workdir, "runbookd.log"), "w")
    pin = ["taskset", "-c", cpu] if cpu is not None else []
    return subprocess.Popen(pin + [BINARY, "run", "--config", path], stdout=log,
                            stderr=subprocess.STDOUT, env=env)


def stop(proc, timeout: float = 15.0) -> int:
    proc.terminate()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -9


def tempdir() -> str:
    return tempfile.mkdtemp(prefix="runbookd-bench-")
