"""NumPy's BLAS thread count as the tests read it (threadpoolctl), and where identify reads it."""

from threadpoolctl import threadpool_info

from timbrescope import inference


def blas_threads() -> set[int]:
    """The thread counts of the process's BLAS libraries."""
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def blas_threads_at_each_log_mel(monkeypatch) -> list[set[int]]:
    """A list that gets ``blas_threads()`` at each call of identify's front-end (in the thread computing it)."""
    seen = []
    log_mel = inference.log_mel
    monkeypatch.setattr(inference, "log_mel", lambda *a: seen.append(blas_threads()) or log_mel(*a))
    return seen
