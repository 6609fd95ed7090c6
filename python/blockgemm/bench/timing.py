"""CUDA-graph timing of one backend's call (inside a worker process; torch imported in the functions).

A graph captures `calls` calls rotating over the operand sets, sized to about `target_us` of work: first
from one eager call (which includes the Python call's launch cost, so it underestimates the count), then
corrected from one replay of the captured graph. Each timing replays the graph once untimed, optionally
for `warm_s` seconds first (steady state), then `replays` times back to back between CUDA events; NVML is
sampled while those replays run. The figure is the median replay / calls.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, Optional

from .nvml import Sampler, summarize_samples
from .protocol import graph_call_count, median


class GraphTimer:
    """One backend's captured graph for the current case, reused by every round and protocol."""

    def __init__(self, enqueue: Callable[[int], None], num_sets: int, target_us: float, max_calls: int):
        import torch

        self.enqueue = enqueue
        self.num_sets = num_sets
        self.target_us = target_us
        self.max_calls = max_calls
        self.stream = torch.cuda.Stream()
        self.graph = None
        self.calls = 0
        self.eager_us = None
        self.sized_from_replay_us = None

    def _event_pair_us(self, work: Callable[[], None]) -> float:
        import torch

        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(self.stream):
            start.record()
            work()
            stop.record()
        stop.synchronize()
        return start.elapsed_time(stop) * 1e3

    def _capture(self, calls: int) -> None:
        import torch

        self.graph = None
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
            for call in range(calls):
                self.enqueue(call % self.num_sets)
        self.graph = graph
        self.calls = calls

    def prepare(self) -> None:
        """Eager warm-up and sizing call, capture, one replay to correct the size (recapture if the graph
        came out much shorter than the target)."""
        import torch

        with torch.cuda.stream(self.stream):
            self.enqueue(0)
        self.stream.synchronize()
        self.eager_us = max(self._event_pair_us(lambda: self.enqueue(1 % self.num_sets)), 1.0)
        self._capture(graph_call_count(self.target_us, self.eager_us, self.num_sets, self.max_calls))
        replay_us = self._event_pair_us(self.graph.replay)
        self.sized_from_replay_us = replay_us
        better = graph_call_count(self.target_us, replay_us / self.calls, self.num_sets, self.max_calls)
        if better > 1.25 * self.calls:
            self._capture(better)
            self._event_pair_us(self.graph.replay)

    def time(self, replays: int, warm_s: float, sampler: Optional[Sampler]) -> Dict:
        import torch

        if self.graph is None:
            self.prepare()
        graph, stream = self.graph, self.stream
        warm_replays = 0
        started = time.perf_counter()
        with torch.cuda.stream(stream):
            if warm_s > 0:
                # Keep at most two replays queued, so that the host clock measures GPU time.
                ring = [torch.cuda.Event() for _ in range(3)]
                while time.perf_counter() - started < warm_s:
                    graph.replay()
                    ring[warm_replays % 3].record()
                    warm_replays += 1
                    if warm_replays >= 2:
                        ring[(warm_replays - 2) % 3].synchronize()
            warm_elapsed = time.perf_counter() - started
            graph.replay()  # untimed, as in bench/timing.cpp
            events = [torch.cuda.Event(enable_timing=True) for _ in range(replays + 1)]
            events[0].record()
            for index in range(replays):
                graph.replay()
                events[index + 1].record()
        samples = []
        if sampler is not None and sampler.available:
            while not events[-1].query():
                samples.append(sampler.sample())
                time.sleep(0.002)
            if not samples:
                samples.append(sampler.sample())
        events[-1].synchronize()
        replay_us = [events[i].elapsed_time(events[i + 1]) * 1e3 for i in range(replays)]
        return {
            "status": "ok",
            "us": median(replay_us) / self.calls,
            "replay_us": replay_us,
            "calls_per_graph": self.calls,
            "eager_us": self.eager_us,
            "warm_s": warm_elapsed,
            "warm_replays": warm_replays,
            "nvml": summarize_samples(samples) if samples else {},
        }

    def release(self) -> None:
        self.graph = None
