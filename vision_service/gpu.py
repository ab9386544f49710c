"""GPU utilisation and memory from NVML, read at scrape time; absent (not an error) without a GPU."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


class GpuCollector(Collector):
    """Yields ``vision_gpu_*`` gauges per GPU index. Without NVML or a GPU it yields nothing."""

    def __init__(self) -> None:
        self._nvml = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._count = pynvml.nvmlDeviceGetCount()
        except Exception as exc:  # no driver, no GPU, no library: all mean "no GPU metrics"
            log.info("NVML unavailable, GPU metrics disabled: %s", exc)
            self._count = 0

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Describing nothing keeps registration free of an NVML call.
        return iter(())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self._nvml is None or self._count == 0:
            return
        nvml = self._nvml
        util = GaugeMetricFamily(
            "vision_gpu_utilization_ratio",
            "Fraction of the last sample period the GPU was busy.",
            labels=["gpu"],
        )
        used = GaugeMetricFamily("vision_gpu_memory_used_bytes", "GPU memory in use.", labels=["gpu"])
        total = GaugeMetricFamily("vision_gpu_memory_total_bytes", "GPU memory installed.", labels=["gpu"])
        for index in range(self._count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                rates = nvml.nvmlDeviceGetUtilizationRates(handle)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception as exc:  # a GPU falling off the bus must not break /metrics
                log.warning("NVML read of GPU %d failed: %s", index, exc)
                continue
            util.add_metric([str(index)], rates.gpu / 100.0)
            used.add_metric([str(index)], float(memory.used))
            total.add_metric([str(index)], float(memory.total))
        yield util
        yield used
        yield total
