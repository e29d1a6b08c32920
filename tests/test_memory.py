"""Peak memory per run (ltnas/memory.py): recorded in eval.json beside the wall time, shown in the report and
the comparison table."""

from __future__ import annotations

import mmap
import sys

import numpy as np
import pytest

from ltnas.memory import peak_memory, reset_peak_memory
from ltnas.report.summary import format_bytes, format_peak_memory, summary_rows


def test_peak_resident_memory_rises_by_what_a_run_touches_and_is_counted_per_run_on_linux():
    reset_peak_memory("cpu")
    before = peak_memory("cpu")
    assert before["cpu_rss_bytes"] > 0 and before["cuda_allocated_bytes"] is None
    # 64 MiB of fresh anonymous pages, every one touched: an allocator that reuses memory the process already
    # holds (as after a long test session) would not raise the resident set
    block = mmap.mmap(-1, 64 * 2 ** 20)
    np.frombuffer(block, dtype=np.uint8)[:] = 1
    after = peak_memory("cpu")
    assert after["cpu_rss_bytes"] - before["cpu_rss_bytes"] >= 60 * 2 ** 20
    block.close()
    # a peak stays after the memory is freed (Linux sums its RSS counters per thread lazily: within a few pages)
    assert peak_memory("cpu")["cpu_rss_bytes"] >= after["cpu_rss_bytes"] - 2 ** 20
    if sys.platform.startswith("linux"):
        assert after["scope"] == "run"
        reset_peak_memory("cpu")  # the next run starts from what is resident now, not from the last one's peak
        assert peak_memory("cpu")["cpu_rss_bytes"] < after["cpu_rss_bytes"]


def test_peak_memory_formats():
    assert format_bytes(None) == "—" and format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(3 * 2 ** 30) == "3.00 GiB"
    assert format_peak_memory({"cpu_rss_bytes": 2 ** 30, "cuda_allocated_bytes": 35 * 2 ** 30, "scope": "run"}) \
        == "GPU 35.00 GiB, CPU RSS 1.00 GiB"
    assert format_peak_memory({"cpu_rss_bytes": 2 ** 29, "cuda_allocated_bytes": None, "scope": "process"}) \
        == "CPU RSS 512.0 MiB (process peak)"
    rows = dict(summary_rows({"peak_memory": {"cpu_rss_bytes": 2 ** 20, "cuda_allocated_bytes": None,
                                              "scope": "run"}}))
    assert rows["Peak memory"] == "CPU RSS 1.0 MiB"


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_cuda_peak_is_max_memory_allocated_since_the_reset():
    import torch

    reset_peak_memory("cuda")
    block = torch.empty(2 ** 26, dtype=torch.uint8, device="cuda")  # 64 MiB
    peak = peak_memory("cuda")
    assert peak["cuda_allocated_bytes"] >= 2 ** 26
    del block
