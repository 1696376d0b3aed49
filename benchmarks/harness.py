"""Shared benchmark plumbing: emulator subprocess, test files, child runs, stats and figures."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import psutil  # type: ignore[import-untyped,unused-ignore]

from kore_models.emulator.process import EmulatorProcess

KEY = "kg-bench-key"
KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
_BLOCK = 16 * MiB


def fmt_size(n: int) -> str:
    """1073741824 -> '1 GiB'; 268435456 -> '256 MiB'."""
    if n >= GiB and n % GiB == 0:
        return f"{n // GiB} GiB"
    return f"{n / MiB:g} MiB"


def scratch_root(need_bytes: int) -> Path:
    """A scratch folder for test files: /dev/shm when it has room, else benchmarks/data."""
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > need_bytes + 2 * GiB:
        root = shm / f"kore-bench-{os.getuid()}"
    else:
        root = ROOT / "benchmarks" / "data"
    root.mkdir(parents=True, exist_ok=True)
    return root


def make_file(path: Path, size: int) -> Path:
    """A ``size``-byte valid tar (one member of random bytes); reused when already there.

    The content is one 16 MiB ``os.urandom`` block repeated: compressibility plays no role
    (nothing on the path compresses), and it is written at memory speed.
    """
    if path.exists() and path.stat().st_size == size:
        return path
    payload = size - 3 * 512  # header + two zero end blocks
    assert payload > 0, size
    assert payload % 512 == 0, size
    info = tarfile.TarInfo("model.bin")
    info.size = payload
    block = os.urandom(_BLOCK)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(info.tobuf(format=tarfile.USTAR_FORMAT))
        left = payload
        while left:
            n = min(left, _BLOCK)
            out.write(block[:n])
            left -= n
        out.write(b"\0" * 1024)
    os.replace(tmp, path)
    return path


# ---- the emulator in its own process ------------------------------------------------


def _http(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    ca: Path | None = None,
) -> Any:
    assert url.startswith(("http://127.0.0.1", "http://[::1]", "https://127.0.0.1")), url
    data = None if body is None else json.dumps(body).encode()
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)  # noqa: S310
    context = None if ca is None else ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(req, timeout=30, context=context) as resp:  # noqa: S310
        return json.loads(resp.read() or b"null")


class Emulator(EmulatorProcess):
    """The shared launcher (``kore_models.emulator.process``) with benchmark defaults:
    discard storage, instant jobs, its log kept in the data dir, options patched at start."""

    def __init__(
        self, data_dir: Path, *, storage: str = "discard", tls: bool = False, **options: Any
    ):
        job_seconds = str(options.pop("job_seconds", 0.0))
        super().__init__(
            data_dir,
            "--storage",
            storage,
            "--job-seconds",
            job_seconds,
            *(["--tls"] if tls else []),
            api_key=KEY,
            stderr_path=data_dir / "emulator.log",
        )
        self.options = options
        self.ca: Path | None = data_dir / "tls" / "ca.pem" if tls else None
        """With tls: the CA the emulator generated (``--ca-bundle`` for clients)."""

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """``/_emulator{path}`` over http or, with tls, https trusting the emulator's CA."""
        return _http(method, f"{self.url}/_emulator{path}", body, ca=self.ca)

    def __enter__(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        super().__enter__()
        if self.options:
            self.patch(**self.options)
        return self

    def patch(self, **config: Any) -> Any:
        """Change run-time options (PATCH /_emulator/config)."""
        return self.configure(**config)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """An API call with the key, e.g. ``call("POST", "/models/cm-1/export")``."""
        return _http(method, f"{self.api}{path}", body, {"x-api-key": KEY}, ca=self.ca)

    def start_session(self, total_chunks: int, size: int, name: str = "bench.tar") -> str:
        body = {
            "fileContext": "model",
            "totalChunks": total_chunks,
            "fileExtension": "tar",
            "fileName": name,
            "fileSize": size,
        }
        return str(self.call("POST", "/files/session/start", body)["sessionId"])


# ---- child processes: wall time, CPU, peak RSS ---------------------------------------


@dataclass
class ChildRun:
    """A finished child process and what it cost."""

    output: dict[str, Any]
    wall: float
    cpu: float  # user + sys of the child (and its reaped children), from wait4
    maxrss: int  # bytes, ru_maxrss: NOT the child's own peak, see peak_rss
    sampled_peak_rss: int  # bytes, psutil RSS every 20 ms
    hwm: int  # bytes, the last VmHWM read from /proc/PID/status (monotonic high-water mark)

    @property
    def peak_rss(self) -> int:
        """The child's own peak RSS: VmHWM, or the RSS samples if they saw more.

        Not ``ru_maxrss``: Linux folds the pre-exec high-water mark into it, and before exec
        the child is a copy of this (bigger) runner process, so it reports the runner's RSS.
        """
        return max(self.hwm, self.sampled_peak_rss)

    returncode: int


def run_child(
    argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None
) -> ChildRun:
    """Run ``argv``, sample its RSS every 20 ms, reap it with wait4; stdout parsed as JSON."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, env=env, cwd=ROOT)
        peak = hwm = 0
        try:
            ps: psutil.Process | None = psutil.Process(proc.pid)
        except psutil.Error:
            ps = None
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                raise TimeoutError(f"{argv[:4]} ran longer than {timeout:g}s")
            if ps is not None:
                try:
                    peak = max(peak, ps.memory_info().rss)
                except psutil.Error:
                    ps = None
            hwm = max(hwm, _vm_hwm(proc.pid))
            time.sleep(0.02)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:5])} exited {proc.returncode}: {errors[-2000:]}")
    return ChildRun(
        output=_json_output(text),
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        maxrss=usage.ru_maxrss * KiB,
        sampled_peak_rss=peak,
        hwm=hwm,
        returncode=proc.returncode,
    )


def _vm_hwm(pid: int) -> int:
    """VmHWM of ``pid`` in bytes (0 when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * KiB
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _json_output(text: str) -> dict[str, Any]:
    """The child's JSON: all of stdout, else its last line that parses; else the raw tail."""
    candidates = [text, *reversed(text.splitlines())]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {"raw": text[-500:]}


def timed(argv: Sequence[str], *, timeout: float) -> float:
    """Wall seconds of a command that must succeed (curl, split)."""
    started = time.perf_counter()
    subprocess.run(list(argv), check=True, timeout=timeout, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


# ---- figures --------------------------------------------------------------------------


@dataclass
class Figure:
    """One reported number: samples of one quantity, its target and whether it was met."""

    case: str
    name: str
    unit: str
    samples: list[float]
    target: str = ""
    met: bool | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def low(self) -> float:
        return min(self.samples) if self.samples else float("nan")

    @property
    def high(self) -> float:
        return max(self.samples) if self.samples else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "figure": self.name,
            "unit": self.unit,
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "samples": self.samples,
            "target": self.target,
            "met": self.met,
            "notes": self.notes,
            **({"extra": self.extra} if self.extra else {}),
        }


def ratios(nums: Sequence[float], dens: Sequence[float]) -> list[float]:
    """Pairwise ratios of measurements taken in the same repetition."""
    return [n / d for n, d in zip(nums, dens, strict=True) if d > 0]


@dataclass
class Context:
    """What the cases share in one run: mode, scratch folder, files, and cross-case results."""

    quick: bool
    scratch: Path
    out_dir: Path
    reps: int
    files: dict[int, Path] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)

    def file(self, size: int) -> Path:
        if size not in self.files:
            self.files[size] = make_file(self.scratch / f"bench-{size // MiB}MiB.tar", size)
        return self.files[size]

    def emulator(
        self, name: str, *, storage: str = "discard", tls: bool = False, **options: Any
    ) -> Emulator:
        folder = self.scratch / f"emulator-{name}"
        shutil.rmtree(folder, ignore_errors=True)
        return Emulator(folder, storage=storage, tls=tls, **options)


def child_python(module: str, *args: str) -> list[str]:
    return [PYTHON, "-m", module, *args]


def at_least(values: Sequence[float], floor: float) -> bool:
    """A ">= floor" target is met when the median of the same-run figures reaches it."""
    return bool(values) and statistics.median(values) >= floor


def at_most(values: Sequence[float], ceiling: float) -> bool:
    """A "<= ceiling" target is met when the median stays at or under it."""
    return bool(values) and statistics.median(values) <= ceiling
