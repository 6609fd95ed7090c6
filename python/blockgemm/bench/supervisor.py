"""Worker processes seen from the benchmark's main process (no torch here): start, request with a time
limit, notice a crash, restart.

A worker that dies (a peer's kernel killed its CUDA context, an abort in a library) or does not answer in
time is recorded as crashed for the request in flight; the next request starts a fresh one. Workers
inherit the environment (PYTHONPATH with the peers) and write their own logging to this process's stderr.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, Optional

CRASH = "crash"
TIMEOUT = "timeout"

# The worker program; "--family NAME" is appended. The harness's tests put a fake worker here.
WORKER_COMMAND = [sys.executable, "-m", "blockgemm.bench.worker"]


class Worker:
    def __init__(self, family: str, start_timeout_s: float = 300.0):
        self.family = family
        self.start_timeout_s = start_timeout_s
        self.process: Optional[subprocess.Popen] = None
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.next_id = 0
        self.hello: Optional[Dict] = None
        self.starts = 0
        self.crashes = 0

    # ----------------------------------------------------------------------------- process
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @staticmethod
    def _reader(stream, lines: "queue.Queue[Optional[str]]") -> None:
        # The queue is the one of the process this thread reads (a restarted worker gets a new one).
        try:
            for line in stream:
                lines.put(line)
        except (OSError, ValueError):
            pass
        lines.put(None)  # end of stream: the process is gone

    def start(self) -> Dict:
        """Starts the process and returns its hello (availability, versions)."""
        self.begin_start()
        return self.finish_start()

    def ensure(self) -> Optional[Dict]:
        """Starts the worker if it is not running (after a crash); returns the new hello, or None when it
        was running."""
        if self.alive():
            return None
        return self.start()

    def begin_start(self) -> None:
        """Starts the process without waiting for it (workers start in parallel); `finish_start` waits."""
        self.stop()
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.process = subprocess.Popen(
            list(WORKER_COMMAND) + ["--family", self.family],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            bufsize=1,
            env=env,
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._reader, args=(self.process.stdout, self.lines), daemon=True).start()
        self.starts += 1
        self.send({"op": "hello"})

    def finish_start(self) -> Dict:
        self.hello = self.receive(self.start_timeout_s)
        return self.hello

    def stop(self, grace_s: float = 5.0) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            try:
                process.stdin.write(json.dumps({"op": "exit"}) + "\n")
                process.stdin.flush()
                process.wait(timeout=grace_s)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        if process.poll() is None:
            process.kill()  # our own child, by its handle
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass

    # ----------------------------------------------------------------------------- requests
    def send(self, request: Dict) -> int:
        self.next_id += 1
        request = dict(request, id=self.next_id)
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except (OSError, ValueError, AttributeError):
            pass  # the receive that follows reports the crash
        return self.next_id

    def receive(self, timeout_s: float) -> Dict:
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.crashes += 1
                self.stop(grace_s=1.0)
                return {"status": TIMEOUT, "note": f"no answer from the {self.family} worker in {timeout_s:.0f} s"}
            try:
                line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                code = self.process.wait() if self.process is not None else None
                self.crashes += 1
                self.stop(grace_s=1.0)
                return {"status": CRASH, "note": f"the {self.family} worker exited ({describe_exit(code)})"}
            try:
                response = json.loads(line)
            except json.JSONDecodeError:
                continue  # not ours (cannot happen: stdout is the protocol's alone), skip
            if response.get("status") == CRASH:
                self.crashes += 1
                self.stop(grace_s=5.0)
            return response

    def request(self, request: Dict, timeout_s: float) -> Dict:
        """Sends and waits; starts the worker first when it is not running (after a crash)."""
        hello = self.ensure()
        if hello is not None and hello.get("status") != "ok":
            return hello
        self.send(request)
        return self.receive(timeout_s)


def describe_exit(code: Optional[int]) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class Pool:
    """One worker per backend family (plus FlashInfer's probe worker), started in parallel."""

    def __init__(self, families, start_timeout_s: float = 300.0):
        self.workers: Dict[str, Worker] = {family: Worker(family.split(":")[0], start_timeout_s) for family in families}

    def start_all(self) -> Dict[str, Dict]:
        for worker in self.workers.values():
            worker.begin_start()
        return {name: worker.finish_start() for name, worker in self.workers.items()}

    def __getitem__(self, name: str) -> Worker:
        return self.workers[name]

    def stop_all(self) -> None:
        for worker in self.workers.values():
            worker.stop()
