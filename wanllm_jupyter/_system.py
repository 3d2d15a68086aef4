"""System metrics (definitions: docs/chart-math.md#system-metrics), sampled by a
task on the kernel's I/O loop (:mod:`._io_loop`, imported by :meth:`SystemMonitor.start`;
each sample, about 1 ms of psutil calls, on its blocking helper thread:
docs/kernel-threads.md).

Sampled every ``sample_every`` seconds (the first sample about one second
after the start, reported at once); the mean of each metric over the
``report_every`` window is handed to the sender as one system batch. GPUs come
from nvidia-ml-py when it imports and finds a device; otherwise they are
skipped quietly.
"""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._loop_task import LoopTask
from ._wire import encode_float

if TYPE_CHECKING:
    import asyncio

MB = 1024 * 1024
GB = 1024 * MB
Sample = dict[str, tuple[float, str | None]]  # metric_type -> (value, device)
FIRST_SAMPLE_AFTER = 1.0  # seconds from the start to the first sample (reported at once)


class _Gpus:
    def __init__(self) -> None:
        import pynvml  # nvidia-ml-py

        pynvml.nvmlInit()
        self.nvml = pynvml
        self.handles = [
            pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
        ]

    def sample(self, out: Sample) -> None:
        nv = self.nvml
        for i, h in enumerate(self.handles):
            dev = f"gpu{i}"
            p = f"gpu.{i}."
            util = nv.nvmlDeviceGetUtilizationRates(h)
            mem = nv.nvmlDeviceGetMemoryInfo(h)
            out[p + "util_percent"] = (float(util.gpu), dev)
            out[p + "memory_mb"] = (mem.used / MB, dev)
            out[p + "memory_percent"] = (100.0 * mem.used / mem.total if mem.total else 0.0, dev)
            try:
                out[p + "temp_c"] = (
                    float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
                    dev,
                )
                power = nv.nvmlDeviceGetPowerUsage(h) / 1000.0
                limit = nv.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0
                out[p + "power_w"] = (power, dev)
                out[p + "power_percent"] = (100.0 * power / limit if limit else 0.0, dev)
            except nv.NVMLError:
                continue


def _gpus() -> _Gpus | None:
    try:
        gpus = _Gpus()
    except Exception:  # no library, no driver, no device: skipped quietly
        return None
    return gpus if gpus.handles else None


class SystemMonitor(LoopTask):
    """Samples psutil (and NVML) and emits one averaged system batch per window."""

    def __init__(
        self,
        run_id: str,
        emit: Callable[[dict[str, Any]], None],
        *,
        sample_every: float = 2.0,
        report_every: float = 10.0,
        disk_paths: tuple[str, ...] = ("/",),
        node: str | None = None,
    ) -> None:
        import psutil

        super().__init__()
        self.psutil = psutil
        self.run_id, self.emit, self.node = run_id, emit, node
        self.sample_every, self.report_every = sample_every, report_every
        self.disk_paths = disk_paths
        self.proc = psutil.Process()
        self.ncpu = psutil.cpu_count() or 1
        self.proc.cpu_percent(None)
        psutil.cpu_percent(None, percpu=True)
        self.disk0 = psutil.disk_io_counters()
        self.net0 = psutil.net_io_counters()
        self.gpus = _gpus()
        self._made = time.monotonic()  # the CPU percentages' interval starts here

    def start(self) -> None:
        """Start sampling on the kernel's I/O loop (imports it: see :mod:`._loop_start`)."""
        import asyncio

        self._stop = asyncio.Event()
        super().start()

    def _end(self, task: concurrent.futures.Future[None]) -> None:
        """Emit the partial window, waiting for it at most ``sample_every`` + 2 s."""
        from ._io_loop import KernelLoop

        KernelLoop.get().call_soon(self._stop.set)
        concurrent.futures.wait([task], self.sample_every + 2.0)

    def sample(self) -> Sample:
        """One reading of every metric."""
        ps = self.psutil
        out: Sample = {}
        out["cpu.process_percent"] = (self.proc.cpu_percent(None) / self.ncpu, None)
        cores = ps.cpu_percent(None, percpu=True)
        out["cpu.percent"] = (sum(cores) / max(len(cores), 1), None)
        for i, c in enumerate(cores):
            out[f"cpu.core.{i}.percent"] = (float(c), f"cpu{i}")
        rss = self.proc.memory_info().rss
        vm = ps.virtual_memory()
        out["memory.process_rss_mb"] = (rss / MB, None)
        out["memory.process_percent"] = (100.0 * rss / vm.total, None)
        out["memory.used_mb"] = (vm.used / MB, None)
        out["memory.percent"] = (float(vm.percent), None)
        for path in self.disk_paths:
            try:
                du = ps.disk_usage(path)
            except OSError:
                continue
            out["disk.percent"] = (float(du.percent), path)
            out["disk.used_gb"] = (du.used / GB, path)
        disk = ps.disk_io_counters()
        if disk is not None and self.disk0 is not None:
            out["disk.read_mb"] = ((disk.read_bytes - self.disk0.read_bytes) / MB, None)
            out["disk.write_mb"] = ((disk.write_bytes - self.disk0.write_bytes) / MB, None)
        net = ps.net_io_counters()
        if net is not None and self.net0 is not None:
            out["network.sent_mb"] = ((net.bytes_sent - self.net0.bytes_sent) / MB, None)
            out["network.recv_mb"] = ((net.bytes_recv - self.net0.bytes_recv) / MB, None)
        if self.gpus is not None:
            try:
                self.gpus.sample(out)
            except Exception:
                self.gpus = None
        return out

    def batch(self, samples: list[Sample], at: float) -> dict[str, Any]:
        """The system batch body for the mean of ``samples``, stamped ``at`` (epoch s)."""
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        devices: dict[str, str | None] = {}
        for s in samples:
            for k, (v, dev) in s.items():
                sums[k] += v
                counts[k] += 1
                devices[k] = dev
        iso = datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows = []
        for k in sums:
            row: dict[str, Any] = {
                "run_id": self.run_id,
                "metric_type": k,
                "value": encode_float(sums[k] / counts[k]),
                "time": iso,
            }
            if devices[k]:
                row["device"] = devices[k]
            if self.node:
                row["node"] = self.node
            rows.append(row)
        return {"batch_id": uuid.uuid4().hex, "metrics": rows}

    def _age(self) -> float:
        return time.monotonic() - self._made

    async def _main(self) -> None:
        """The first sample is taken ``FIRST_SAMPLE_AFTER`` s after the monitor was
        made (CPU percentages need an interval; a start deferred by
        :mod:`._loop_start` does not delay it) and reported at once, so a chart has a
        point from t ≈ 1 s; then one mean per ``report_every`` window."""
        from ._io_loop import FailureLog, KernelLoop

        io, failures = KernelLoop.get(), FailureLog(f"system sampling of run {self.run_id}")
        samples: list[Sample] = []
        window_end = time.monotonic()
        wait = max(0.0, min(FIRST_SAMPLE_AFTER, self.sample_every) - self._age())
        while True:
            stopped = await _within(self._stop, wait)
            wait = self.sample_every
            try:  # a transient psutil error costs one sample
                samples.append(await io.offload(self.sample))
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.ok()
            if samples and (stopped or time.monotonic() >= window_end):
                self.emit(self.batch(samples, time.time()))
                samples = []
                window_end = time.monotonic() + self.report_every
            if stopped:
                return


async def _within(event: asyncio.Event, seconds: float) -> bool:
    """True when ``event`` is set within ``seconds``."""
    import asyncio

    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True
