"""The job queue: one FIFO worker owns the model, and each job carries its own progress and controls.

Progress, ETA, interrupt and skip live on the `Job`, not in globals; `JobQueue.current` is what the
progress API reports.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Raised inside sampling when the user pressed Interrupt; the job keeps what it finished."""


class Skipped(Exception):
    """Raised inside sampling when the user pressed Skip; the job moves on to the next batch."""


@dataclass
class Job:
    """One request's progress and controls. Sampling code calls `check()` every step."""

    id: str
    name: str = ""
    job_count: int = 1
    job_no: int = 0
    sampling_step: int = 0
    sampling_steps: int = 0
    interrupted: bool = False
    skipped: bool = False
    queued_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    textinfo: str = ""
    current_latent: Any = None
    current_image: Any = None
    preview_step: int = -1

    def interrupt(self) -> None:
        self.interrupted = True

    def skip(self) -> None:
        self.skipped = True

    def check(self) -> None:
        """Raise `Interrupted` or `Skipped` if the user asked for it. Called between sampling steps."""
        if self.interrupted:
            raise Interrupted()
        if self.skipped:
            raise Skipped()

    def next_batch(self) -> None:
        """Mark the start of the next batch: Skip applies to one batch only."""
        self.skipped = False
        self.sampling_step = 0

    @property
    def progress(self) -> float:
        """Fraction done over all batches of this job, 0..1."""
        if self.job_count <= 0:
            return 0.0
        per_batch = self.sampling_step / self.sampling_steps if self.sampling_steps else 0.0
        return min(1.0, (self.job_no + per_batch) / self.job_count)

    @property
    def eta_seconds(self) -> float | None:
        if self.started_at is None or self.progress <= 0:
            return None
        elapsed = time.time() - self.started_at
        return elapsed / self.progress - elapsed


def new_task_id() -> str:
    return f"task({uuid.uuid4().hex[:15]})"


class JobListener(Protocol):
    """Told when the worker starts and finishes a job (both on the worker thread).

    `job_started` is called before the job's function runs; `job_finished` after it returned or raised,
    always (from a `finally`). Listeners may read the job but must not change it; an exception they
    raise is logged and ignored.
    """

    def job_started(self, job: Job) -> None: ...

    def job_finished(self, job: Job) -> None: ...


class JobQueue:
    """A single worker thread that runs submitted jobs one at a time, in arrival order."""

    def __init__(self, listeners: list[JobListener] | None = None) -> None:
        self.listeners: list[JobListener] = list(listeners or [])
        self._queue: queue.Queue[tuple[Job, Callable[[Job], Any], Future] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._pending: list[Job] = []
        self.current: Job | None = None
        self.finished: dict[str, Job] = {}
        self._worker = threading.Thread(target=self._run, name="job-worker", daemon=True)
        self._worker.start()

    def submit(self, function: Callable[[Job], Any], *, name: str = "", task_id: str | None = None) -> tuple[Job, Future]:
        """Queue `function(job)`; returns the job (for progress) and a future with its result."""
        job = Job(id=task_id or new_task_id(), name=name)
        future: Future = Future()
        with self._lock:
            self._pending.append(job)
        self._queue.put((job, function, future))
        return job, future

    def run(self, function: Callable[[Job], Any], *, name: str = "", task_id: str | None = None) -> Any:
        """Queue `function` and wait for its result (re-raising its exception)."""
        _, future = self.submit(function, name=name, task_id=task_id)
        return future.result()

    def position(self, task_id: str) -> int | None:
        """How many jobs wait before `task_id` (0 = running next), or None when not queued."""
        with self._lock:
            for index, job in enumerate(self._pending):
                if job.id == task_id:
                    return index
        return None

    def find(self, task_id: str) -> Job | None:
        with self._lock:
            if self.current is not None and self.current.id == task_id:
                return self.current
            for job in self._pending:
                if job.id == task_id:
                    return job
            return self.finished.get(task_id)

    def pending_count(self) -> int:
        """How many jobs wait behind the running one."""
        with self._lock:
            return len(self._pending)

    def interrupt(self) -> None:
        """Interrupt the running job; does nothing while idle (the next job is not affected)."""
        job = self.current
        if job is not None:
            job.interrupt()

    def skip(self) -> None:
        """Skip the running job's current batch; does nothing while idle."""
        job = self.current
        if job is not None:
            job.skip()

    def stop(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, function, future = item
            with self._lock:
                self._pending.remove(job)
                self.current = job
            job.started_at = time.time()
            result: Any = None
            failure: BaseException | None = None
            cancelled = not future.set_running_or_notify_cancel()
            try:
                self._notify("job_started", job)
                if not cancelled:
                    result = function(job)
            except BaseException as error:  # noqa: BLE001 - handed to the waiting caller
                failure = error
            finally:
                # Bookkeeping first, so that a caller woken by the result already sees the queue idle.
                job.finished_at = time.time()
                job.current_latent = None
                with self._lock:
                    self.current = None
                    self.finished[job.id] = job
                    while len(self.finished) > 100:
                        self.finished.pop(next(iter(self.finished)))
                self._notify("job_finished", job)
                if not cancelled:
                    if failure is not None:
                        future.set_exception(failure)
                    else:
                        future.set_result(result)

    def _notify(self, event: str, job: Job) -> None:
        for listener in list(self.listeners):
            try:
                getattr(listener, event)(job)
            except Exception:  # noqa: BLE001 - a listener must never stop the worker
                log.exception("job listener failed on %s", event)
