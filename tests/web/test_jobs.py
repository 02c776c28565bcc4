"""The job queue behind `serve`: what it holds for the identify calls it runs (a module of its own, so that no
other queue of the web tests is open beside it)."""

from threadpoolctl import threadpool_limits

from timbrescope.inference import Recognizer
from timbrescope.web.jobs import JobQueue

from blas_threads import blas_threads, blas_threads_at_each_log_mel


def test_the_job_queue_holds_numpy_blas_to_one_thread_for_its_identify_calls(example, monkeypatch):
    """A BLAS limit set from a worker thread was seen not to hold in the threads its identify starts (two BLAS
    threads there, OpenBLAS): the queue holds it from the thread that creates it, so the server's mel products
    run as the CLI's do, and gives the caller's setting back when it closes."""
    seen = blas_threads_at_each_log_mel(monkeypatch)
    with threadpool_limits(2, user_api="blas"):
        queue = JobQueue(Recognizer(), workers=1, capacity=2, timeout_seconds=60.0)
        try:
            job = queue.submit("example.wav", example, False, 12.0)
            assert job.done.wait(60) and job.status == "done"
        finally:
            queue.close()
        after = blas_threads()
    assert seen and all(threads == {1} for threads in seen)
    assert after == {2}
