"""Console progress bars: one bar per batch with it/s, and a total bar across all batches of a job.

`ConsoleProgress` is a `JobListener`: the queue tells it when a job starts and ends, and while a job
runs a small thread reads the job's counters a few times a second and moves the bars. The pipeline
does not need to know the console exists.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from tqdm import tqdm

from modules.app.jobs import Job

POLL_SECONDS = 0.1


class ConsoleProgress:
    """Draws tqdm bars for the running job on `stream` (stderr by default)."""

    def __init__(self, stream: TextIO | None = None, poll_seconds: float = POLL_SECONDS) -> None:
        self.stream = stream or sys.stderr
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def job_started(self, job: Job) -> None:
        """Start following `job` (called on the worker thread before the job runs)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, args=(job,), name="console-progress", daemon=True)
        self._thread.start()

    def job_finished(self, job: Job) -> None:
        """Stop following and close the bars (called on the worker thread after the job ends)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def _follow(self, job: Job) -> None:
        batch_bar: tqdm | None = None
        total_bar: tqdm | None = None
        batch_no = -1
        done_before = 0  # steps of the batches already finished
        try:
            while True:
                stopping = self._stop.wait(self.poll_seconds)
                steps = job.sampling_steps
                if steps > 0:
                    if total_bar is None and job.job_count > 1:
                        total_bar = tqdm(total=job.job_count * steps, desc="Total progress", file=self.stream, position=1, leave=False)
                    if job.job_no != batch_no:
                        if batch_bar is not None:
                            done_before += steps
                            batch_bar.close()
                        batch_no = job.job_no
                        batch_bar = tqdm(
                            total=steps, desc=f"{job.name or 'job'} {batch_no + 1}/{job.job_count}", file=self.stream, unit="it"
                        )
                    step = min(job.sampling_step, steps)
                    if batch_bar is not None and step > batch_bar.n:
                        batch_bar.update(step - batch_bar.n)
                    if total_bar is not None:
                        current = min(done_before + step, total_bar.total)
                        if current > total_bar.n:
                            total_bar.update(current - total_bar.n)
                if stopping:
                    return
        finally:
            for bar in (batch_bar, total_bar):
                if bar is not None:
                    bar.close()
