"""rnnzoo serve: real HTTP on localhost — start, request (one and many clients at once), bad requests, shut down."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("litserve", reason="rnnzoo serve needs the optional extra: pip install 'rnnzoo[serve]'")

from rnnzoo import load_pretrained

MODEL = "sst2-gru_small"
TEXTS = ["a gorgeous, witty, seductive movie .", "dull and overlong", "the plot is thin but the actors shine"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(port: int, body: bytes | dict, timeout: float = 30) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server():
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "rnnzoo.cli", "serve", "--model", MODEL, "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--max_batch_size", "8", "--batch_timeout", "0.05"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if process.poll() is not None:
                pytest.fail(f"the server exited: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
    else:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the server did not answer /health within 120 s")
    yield port
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def expected():
    return load_pretrained(MODEL).predict(TEXTS)


def same(outputs: list[dict], expected: list[dict]) -> bool:
    return [o["label"] for o in outputs] == [e["label"] for e in expected] and all(
        o["probabilities"] == pytest.approx(e["probabilities"], abs=1e-5)
        for o, e in zip(outputs, expected, strict=True)
    )


def test_predict_answers_one_output_per_input_in_order(server, expected):
    status, body = post(server, {"inputs": TEXTS, "options": {}})
    assert status == 200 and same(body["outputs"], expected)


def test_concurrent_clients_each_get_their_own_answers(server, expected):
    """32 requests at once are batched (max_batch_size 8); every client gets the answers to its own inputs."""
    requests = [{"inputs": [TEXTS[i % 3], TEXTS[(i + 1) % 3]]} for i in range(32)]
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(lambda body: post(server, body), requests))
    for i, (status, body) in enumerate(answers):
        assert status == 200
        assert same(body["outputs"], [expected[i % 3], expected[(i + 1) % 3]])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the body must be JSON"),
        ([1, 2], "must be a JSON object"),
        ({"texts": ["x"]}, "must be a JSON object"),
        ({"inputs": ["x"], "extra": 1}, "must be a JSON object"),
        ({"inputs": []}, '"inputs" must be a list of 1 to'),
        ({"inputs": "not a list"}, '"inputs" must be a list'),
        ({"inputs": [""]}, "input 0 must hold 1 to"),
        ({"inputs": ["x" * 10_001]}, "input 0 must hold 1 to 10000 characters"),
        ({"inputs": ["fine"], "options": {"beam_size": 2}}, r"unknown option\(s\) \['beam_size'\]"),
        ({"inputs": ["fine"], "options": [1]}, '"options" must be a JSON object'),
        ({"inputs": ["   "]}, "empty after tokenization"),
    ],
)
def test_a_bad_request_is_a_400_naming_the_problem_and_the_server_goes_on(server, expected, body, message):
    status, answer = post(server, body)
    assert status == 400
    assert __import__("re").search(message, answer["error"]), answer
    status, answer = post(server, {"inputs": TEXTS[:1]})
    assert status == 200 and same(answer["outputs"], expected[:1])


def test_a_bad_request_does_not_fail_the_good_ones_batched_with_it(server, expected):
    requests = [{"inputs": [""]} if i % 2 else {"inputs": [TEXTS[0]]} for i in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda body: post(server, body), requests))
    assert [status for status, _ in answers] == [400 if i % 2 else 200 for i in range(16)]
    assert all(same(body["outputs"], expected[:1]) for status, body in answers if status == 200)
