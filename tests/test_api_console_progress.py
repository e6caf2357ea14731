"""The console progress bars follow a job's counters: one bar per batch with it/s, and a total bar."""

import io
import time

from modules.app.console_progress import ConsoleProgress
from modules.app.jobs import JobQueue


def test_console_shows_batch_and_total_bars():
    stream = io.StringIO()
    queue = JobQueue(listeners=[ConsoleProgress(stream, poll_seconds=0.01)])

    def work(job):
        job.job_count = 2
        job.sampling_steps = 5
        job.name = "txt2img"
        for batch in range(2):
            job.job_no = batch
            for step in range(5):
                job.sampling_step = step + 1
                time.sleep(0.03)
        return "done"

    assert queue.run(work) == "done"
    text = stream.getvalue()
    assert "txt2img 1/2" in text and "txt2img 2/2" in text
    assert "Total progress" in text and "10/10" in text
    assert "it/s" in text


def test_a_failing_listener_does_not_stop_the_queue():
    class Broken:
        def job_started(self, job):
            raise RuntimeError("listener broke")

        def job_finished(self, job):
            raise RuntimeError("listener broke")

    queue = JobQueue(listeners=[Broken()])
    assert queue.run(lambda job: 7) == 7
    assert queue.current is None
