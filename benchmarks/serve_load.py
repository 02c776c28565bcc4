"""Load on a live `timbrescope serve` over loopback: many concurrent clients uploading 10-s clips.

Usage: python benchmarks/serve_load.py [--clients 50] [--requests 1000] [--workers N] [--checkpoint CKPT]
Starts the server as a subprocess and warms it up (20 requests from 4 clients: its idle RSS; then 100
from C clients, which brings its memory to the working set of C concurrent uploads), then C client
threads send R uploads in all (`POST /api/v1/identify`, a 10-s 44.1 kHz stereo WAV). Reports failed
requests, p50/p99 latency, throughput and the server's RSS before and after the R uploads (growth there
would be a leak). A second phase overloads a server started with
`--queue 2` (50 clients, 4 requests each): refusals must all be 503 with Retry-After, nothing else.
Prints Markdown for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager

import httpx
import numpy as np
import psutil
import soundfile as sf

import child

from timbrescope.errors import TimbrescopeError, reported


def clip_bytes(seconds: float = 10.0, sr: int = 44100) -> bytes:
    """A 10-s stereo WAV: two tones and noise (decoding and analysis cost as for any 10-s clip)."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(0)
    audio = np.stack([0.2 * np.sin(2 * np.pi * 220 * t), 0.2 * np.sin(2 * np.pi * 330 * t)], axis=1)
    buffer = io.BytesIO()
    sf.write(buffer, audio + 0.02 * rng.standard_normal(audio.shape), sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@contextmanager
def server(*options: str):
    """A `timbrescope serve` on a free loopback port, once it answers: ``(url, psutil.Process)``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "timbrescope", "serve", "--port", str(port), *options]
    with child.started(command) as (process, failed):
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                if process.poll() is not None:
                    raise failed()
                try:
                    httpx.get(f"{url}/api/v1/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise TimbrescopeError(f"timbrescope serve did not answer on {url} within 60 s")
            yield url, psutil.Process(process.pid)
        finally:
            process.terminate()
            process.wait(30)


def load(url: str, clip: bytes, clients: int, requests: int) -> tuple[list[float], Counter, list[str], float]:
    """``clients`` threads share ``requests`` uploads: latencies (s), status counts, refusals without
    Retry-After, wall seconds."""
    left, lock = [requests], threading.Lock()
    latencies, statuses, bad = [], Counter(), []

    def client() -> None:
        with httpx.Client(timeout=120) as http:
            while True:
                with lock:
                    if left[0] == 0:
                        return
                    left[0] -= 1
                started = time.perf_counter()
                try:
                    response = http.post(f"{url}/api/v1/identify", files={"file": ("clip.wav", clip, "audio/wav")})
                    status = response.status_code
                except httpx.TransportError as exc:
                    status = type(exc).__name__
                with lock:
                    latencies.append(time.perf_counter() - started)
                    statuses[status] += 1
                    if status == 503 and "retry-after" not in response.headers:
                        bad.append("503 without Retry-After")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, statuses, bad, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=None, help="the server's --workers (default: its own)")
    parser.add_argument("--checkpoint", default=None)
    args = parser.parse_args()
    clip = clip_bytes()
    options = [*(["--workers", str(args.workers)] if args.workers else []),
               *(["--checkpoint", args.checkpoint] if args.checkpoint else [])]
    with server(*options) as (url, process):
        load(url, clip, 4, 20)
        idle = process.memory_info().rss
        load(url, clip, args.clients, 100)
        before = process.memory_info().rss
        latencies, statuses, bad, wall = load(url, clip, args.clients, args.requests)
        after = process.memory_info().rss
        workers = httpx.get(f"{url}/api/v1/health").json()["workers"]
    with server(*options, "--queue", "2") as (url, _):
        _, overload, overload_bad, _ = load(url, clip, 50, 200)
    p50, p99 = np.percentile(latencies, [50, 99])
    failed = args.requests - statuses[200]
    print(f"### Serving: {args.clients} concurrent clients, {args.requests} uploads of a 10-s clip "
          f"({os.cpu_count()} cores, {workers} analysis workers)\n")
    print("| measure | value |\n|---|---|")
    print(f"| failed requests | {failed} ({dict(statuses)}) |")
    print(f"| latency p50 / p99 | {p50:.2f} s / {p99:.2f} s |")
    print(f"| throughput | {args.requests / wall:.1f} requests/s ({10 * args.requests / wall:.0f} s of audio per s) |")
    print(f"| server RSS idle / before / after | {idle / 2**20:.0f} MB / {before / 2**20:.0f} MB / "
          f"{after / 2**20:.0f} MB (growth over the {args.requests} uploads {(after - before) / 2**20:+.0f} MB) |")
    print(f"| overload (`--queue 2`, 50 clients, 200 uploads) | {dict(overload)}; "
          f"{'every 503 with Retry-After' if not overload_bad else overload_bad[0]} |")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/serve_load.py"))
