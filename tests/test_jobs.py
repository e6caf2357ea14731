"""The job queue runs jobs one at a time in arrival order; errors reach the caller and free the worker."""

import threading
import time

import pytest

from modules.app.jobs import Interrupted, JobQueue


def test_jobs_run_in_arrival_order_one_at_a_time():
    queue = JobQueue()
    order, running = [], []

    def work(name):
        def run(job):
            running.append(name)
            assert len(running) == 1
            time.sleep(0.02)
            order.append(name)
            running.pop()
            return name

        return run

    futures = [queue.submit(work(index))[1] for index in range(5)]
    assert [future.result(timeout=5) for future in futures] == list(range(5))
    assert order == list(range(5))


def test_error_reaches_caller_and_worker_survives():
    queue = JobQueue()

    def boom(job):
        raise RuntimeError("model exploded")

    with pytest.raises(RuntimeError, match="model exploded"):
        queue.run(boom)
    assert queue.current is None
    assert queue.run(lambda job: 42) == 42


def test_interrupt_reaches_the_running_job():
    queue = JobQueue()
    started = threading.Event()

    def loop(job):
        started.set()
        for _ in range(500):
            job.check()
            time.sleep(0.01)
        return "finished"

    job, future = queue.submit(loop, task_id="task(abc)")
    assert started.wait(5)
    assert queue.find("task(abc)") is job
    queue.interrupt()
    with pytest.raises(Interrupted):
        future.result(timeout=5)
    assert job.interrupted
