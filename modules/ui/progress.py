"""Progress of a running job for the UI: a bar with ETA and the latest live preview.

`run_with_progress` runs a blocking generation call on a helper thread and, while it runs, yields
`ProgressUpdate`s that Gradio event generators turn into component updates.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from modules.app.jobs import Job, JobQueue

POLL_SECONDS = 0.4


@dataclass
class ProgressUpdate:
    html: str
    preview: Any = None
    preview_step: int = -1


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


def progress_html(job: Job | None, queue_position: int | None = None) -> str:
    """The bar: percent done, ETA, batch and step counters. Text is escaped."""
    if job is None or job.started_at is None:
        waiting = f"Waiting… ({queue_position} ahead)" if queue_position else "Waiting…"
        return f"<div class='progress-bar' data-progress='0'><div class='progress-text'>{html.escape(waiting)}</div></div>"
    percent = int(job.progress * 100)
    eta = format_eta(job.eta_seconds)
    parts = [f"{percent}%"]
    if eta:
        parts.append(f"ETA: {eta}")
    if job.job_count > 1:
        parts.append(f"Batch {job.job_no + 1} of {job.job_count}")
    if job.sampling_steps:
        parts.append(f"Step {job.sampling_step}/{job.sampling_steps}")
    if job.interrupted:
        parts.append("Interrupting…")
    text = html.escape(" · ".join(parts))
    return (
        f"<div class='progress-bar' data-progress='{percent}'>"
        f"<div class='progress-fill' style='width:{percent}%'></div><div class='progress-text'>{text}</div></div>"
    )


def run_with_progress(call: Callable[[], Any], jobs: JobQueue, task_id: str | None) -> Iterator[ProgressUpdate | Future]:
    """Start `call()` on a thread; yield a `ProgressUpdate` every poll, then the finished future.

    With `task_id` the job is looked up by id; without, the queue's running job is shown.
    """
    future: Future = Future()

    def worker() -> None:
        try:
            future.set_result(call())
        except BaseException as error:  # noqa: BLE001 - handed to the waiting UI handler
            future.set_exception(error)

    threading.Thread(target=worker, name="ui-generation", daemon=True).start()
    last_step = -1
    while True:
        try:
            future.exception(timeout=POLL_SECONDS)
            break
        except FutureTimeout:
            pass
        job = jobs.find(task_id) if task_id else jobs.current
        position = jobs.position(task_id) if task_id else None
        update = ProgressUpdate(progress_html(job, position))
        if job is not None and job.current_image is not None and job.preview_step != last_step:
            update.preview, update.preview_step = job.current_image, job.preview_step
            last_step = job.preview_step
        yield update
    yield future
