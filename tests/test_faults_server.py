"""The web service under abuse: schema-driven fuzzing, bad bodies, slow and many clients.

Schemathesis drives the app in-process from its own OpenAPI schema. Everything else runs
against a real `handwritten serve` on a free 127.0.0.1 port, through raw sockets and
http.client: what a hostile or broken client really sends. Every loop is bounded in count
and time. Throughout, no request may get a 5xx and the server must keep answering with its
memory bounded (VmRSS from /proc).
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from conftest import ROOT
from drawings import draw, encode
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from PIL import Image
from schemathesis.specs.openapi.checks import positive_data_acceptance

from handwritten.serve import MAX_BODY_BYTES, create_app

HANDWRITTEN = Path(sys.executable).with_name("handwritten")
START_SECONDS = 90
TIMEOUT = 30
CLIENTS = 64
REQUESTS = 2000
RSS_GROWTH_MB = 64
"""Allowed growth of the server's resident memory over the whole abuse, after warm-up: the
model, caches and thread pools are in place by then, so what remains would be a leak (2,000
requests leaking even 32 KB each would pass 64 MB)."""


SEVEN = encode(draw())
BLANK = encode(Image.new("L", (64, 64), 255))


# Schemathesis: the app's own OpenAPI schema, in-process (ASGI).

APP = create_app(model="seed")
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def started_app() -> Iterator[None]:
    """Run the app's start-up (the model load) once; Schemathesis's client does not."""
    with TestClient(APP):
        yield


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_request_the_schema_allows_gets_a_server_error(case, started_app: None) -> None:
    """Every check but positive_data_acceptance: the schema can say "binary", not "a
    decodable image", so schema-valid bytes that are no image are rightly refused (400)."""
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


# A real server.


@dataclass
class Server:
    port: int
    process: subprocess.Popen
    log: Path

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            connection.close()

    def alive(self) -> bool:
        return self.request("GET", "/api/health")[0] == 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    command = [str(HANDWRITTEN), "serve", "--port", str(port), "--model", "seed"]
    with open(log, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT)
    running = Server(port, process, log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"not up in {START_SECONDS} s: {log.read_text()}"
            try:
                if running.alive():
                    break
            except OSError:
                time.sleep(0.2)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def warm_rss(server: Server) -> float:
    """Resident memory once every code path has run a few times."""
    for body in (SEVEN, BLANK, b"junk") * 20:
        server.request("POST", "/api/predict", body, {"Content-Type": "image/png"})
    return server.rss_mb()


def raw_exchange(port: int, payload: bytes, pause: float = 0.0, pieces: int = 1) -> bytes:
    """Send `payload` over a raw socket in `pieces` with `pause` between; return the reply.

    No half-close after sending: uvicorn takes that for a client gone and drops the request.
    Sending stops once the server has answered (a 413 comes before the body is all sent),
    as a real client's would.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        step = max(1, -(-len(payload) // pieces))
        for start in range(0, len(payload), step):
            if select.select([sock], [], [], 0)[0]:
                break
            sock.sendall(payload[start : start + step])
            time.sleep(pause)
        reply = b""  # Every request here says Connection: close, so the server ends it.
        while chunk := sock.recv(65536):
            reply += chunk
        return reply


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def post(body: bytes, content_type: str = "image/png", extra: bytes = b"") -> bytes:
    head = (
        f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n"
    ).encode()
    return head + extra + b"\r\n" + body


def claiming_length(length: int) -> bytes:
    """Headers declaring a body of `length` bytes, none of which is sent: the answer must come
    from the declaration alone."""
    return (
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % length
    )


def test_oversized_bodies_are_refused_with_413(server: Server, warm_rss: float) -> None:
    assert status_of(raw_exchange(server.port, claiming_length(MAX_BODY_BYTES + 1))) == 413
    assert status_of(raw_exchange(server.port, claiming_length(2**40))) == 413
    chunk = b"\0" * 65536
    over = MAX_BODY_BYTES // len(chunk) + 2
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(over)) + b"0\r\n\r\n"
    no_length = (
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    assert status_of(raw_exchange(server.port, no_length + chunked, 0.01, over)) == 413
    assert server.alive()


BAD_REQUESTS = {
    "text-plain": post(b"seven", "text/plain"),
    "json": post(b'{"image": "iVBORw0KGgo="}', "application/json"),
    "no-content-type": b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
    b"Connection: close\r\n\r\njunk",
    "multipart-without-boundary": post(SEVEN, "multipart/form-data"),
    "multipart-wrong-field": post(
        b'--b\r\nContent-Disposition: form-data; name="picture"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + SEVEN + b"\r\n--b--\r\n",
        "multipart/form-data; boundary=b",
    ),
    "multipart-cut-short": post(
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        + SEVEN[:50],
        "multipart/form-data; boundary=b",
    ),
    "png-claiming-json-body": post(b'{"a": 1}'),
    "empty-png": post(b""),
    "blank-png": post(BLANK),
    "bomb-header": post(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00N \x00\x00N \x08\x00\x00\x00\x00"
        b"\x00\x00\x00\x00"
    ),
    "bad-content-length": b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n"
    b"Connection: close\r\n\r\n",
    "not-http": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64) + b"\r\n\r\n",
    "wrong-method": b"DELETE /api/predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "path-traversal": b"GET /static/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n"
    b"Connection: close\r\n\r\n",
}


# Odd but well-formed: any answer but a 5xx will do.
ODD_REQUESTS = {
    "long-image-type": post(SEVEN, "image/" + "x" * 8000),
    "header-flood": post(SEVEN, extra=b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(500))),
    "query-junk": post(SEVEN).replace(b"/api/predict", b"/api/predict?" + b"%00%ff&" * 500),
    "pipelined": post(SEVEN).replace(b"Connection: close\r\n", b"") + post(BLANK),
}


@pytest.mark.parametrize("kind", ODD_REQUESTS)
def test_an_odd_request_is_answered_without_a_server_error(
    server: Server, warm_rss: float, kind: str
) -> None:
    reply = raw_exchange(server.port, ODD_REQUESTS[kind])
    assert status_of(reply) < 500, reply[:300]
    assert server.alive()


@pytest.mark.parametrize("kind", BAD_REQUESTS)
def test_a_bad_request_gets_a_4xx_and_the_server_goes_on(
    server: Server, warm_rss: float, kind: str
) -> None:
    reply = raw_exchange(server.port, BAD_REQUESTS[kind])
    if reply:  # A client that does not speak HTTP may just be hung up on.
        assert 400 <= status_of(reply) < 500, reply[:300]
    else:
        assert kind == "not-http"
    if reply and b"application/json" in reply.split(b"\r\n\r\n")[0]:
        assert "detail" in json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert server.alive()


def test_slow_clients_do_not_hold_up_the_others(server: Server, warm_rss: float) -> None:
    """20 clients trickle a PNG over 2 s each; meanwhile a normal client gets 20 answers."""
    slow_replies: list[bytes] = []

    def trickle() -> None:
        slow_replies.append(raw_exchange(server.port, post(SEVEN), pause=0.2, pieces=10))

    threads = [threading.Thread(target=trickle) for _ in range(20)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    quick = []
    for _ in range(20):
        quick.append(server.request("POST", "/api/predict", SEVEN, {"Content-Type": "image/png"}))
    quick_done = sum(thread.is_alive() for thread in threads)
    for thread in threads:
        thread.join(TIMEOUT)
    assert [status for status, _ in quick] == [200] * 20
    assert quick_done > 0, "the quick requests had to wait for the slow ones"
    assert [status_of(reply) for reply in slow_replies] == [200] * 20


def test_idle_and_half_open_connections_do_not_stop_service(
    server: Server, warm_rss: float
) -> None:
    """200 connections that never finish their request (a slowloris), held for less than
    the read timeout (test_hostile_clients.py has them cut off): the server must still
    answer everyone else meanwhile."""
    held = []
    try:
        for number in range(200):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
            if number % 2:
                sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 999\r\n")
            held.append(sock)
        statuses = [
            server.request("POST", "/api/predict", SEVEN, {"Content-Type": "image/png"})[0]
            for _ in range(10)
        ]
        assert statuses == [200] * 10
    finally:
        for sock in held:
            sock.close()


MIX = [
    ("POST", "/api/predict", SEVEN, "image/png", 200),
    ("POST", "/api/predict", BLANK, "image/png", 422),
    ("POST", "/api/predict", b"\x89PNG junk", "image/png", 400),
    ("POST", "/api/predict", b"", "image/png", 400),
    ("POST", "/api/predict", SEVEN, "text/plain", 415),
    ("GET", "/api/health", None, None, 200),
    ("GET", "/", None, None, 200),
    ("GET", "/no/such/page", None, None, 404),
]


def hammer(server: Server, client: int) -> Counter:
    """One client's share of the load, on one keep-alive connection: (expected, got) pairs."""
    seen: Counter = Counter()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        for number in range(client, REQUESTS, CLIENTS):
            method, path, body, content_type, expected = MIX[number % len(MIX)]
            headers = {"Content-Type": content_type} if content_type else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            seen[(expected, response.status)] += 1
    finally:
        connection.close()
    return seen


def test_2000_requests_from_64_clients_all_answered_right(server: Server, warm_rss: float) -> None:
    with ThreadPoolExecutor(CLIENTS) as pool:
        tallies = list(pool.map(lambda client: hammer(server, client), range(CLIENTS)))
    total = sum(tallies, Counter())
    assert sum(total.values()) == REQUESTS
    assert {got for (expected, got) in total if expected != got} == set(), total
    assert server.alive()


def test_memory_stays_bounded_after_all_the_abuse(server: Server, warm_rss: float) -> None:
    """Runs last in this file (pytest keeps file order): after every test above."""
    grown = server.rss_mb() - warm_rss
    print(f"server RSS: {warm_rss:.0f} MB warm, grew {grown:+.0f} MB under abuse")
    assert grown < RSS_GROWTH_MB
    assert server.alive()


def test_a_client_hanging_up_mid_body_leaves_no_traceback(server: Server) -> None:
    before = server.log.read_text()
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(post(SEVEN)[:-100])
        time.sleep(0.3)
    time.sleep(0.5)
    assert server.alive()
    written = server.log.read_text()[len(before) :]
    assert "Traceback" not in written
    assert '" 500 ' not in written
