"""Bounded load on `rnnzoo serve` (localhost only): requests/s and p50/p99 latency at 1, 8 and 32 clients.

python benchmarks/serve_load.py --model sst2-gru_small --requests 200
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from common import machine, print_table

TEXTS = ["a gorgeous, witty, seductive movie .", "dull and overlong", "the plot is thin but the actors shine"]


def post(port: int, texts: list[str]) -> float:
    body = json.dumps({"inputs": texts}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
        response.read()
    return time.perf_counter() - start


def start_server(model: str, port: int, batch: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "rnnzoo.cli", "serve", "--model", model, "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--max_batch_size", str(batch), "--batch_timeout", "0.005"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="sst2-gru_small")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--max_batch_size", type=int, default=8)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = start_server(args.model, port, args.max_batch_size)
    rows = []
    try:
        for _ in range(20):
            post(port, TEXTS[:1])  # warm-up
        for clients in (1, 8, 32):
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=clients) as pool:
                latencies = sorted(pool.map(lambda i: post(port, [TEXTS[i % 3]]), range(args.requests)))
            elapsed = time.perf_counter() - start
            p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
            rows.append(
                [clients, args.requests, f"{args.requests / elapsed:.1f}", f"{1000 * statistics.median(latencies):.1f}",
                 f"{1000 * p99:.1f}"]
            )  # fmt: skip
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    print(machine())
    print(f"model {args.model}, max_batch_size {args.max_batch_size}, one text per request")
    print_table(["clients", "requests", "requests/s", "p50 ms", "p99 ms"], rows)


if __name__ == "__main__":
    main()
