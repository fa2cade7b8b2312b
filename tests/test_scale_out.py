"""Replicas as they run in production: real `handwritten serve` processes, signals, and nginx.

What makes a replica safe to put behind a load balancer: /metrics that adds up every worker
of a `serve --workers N`, a SIGTERM that finishes the request in flight before the process
exits 0, readiness that answers 503 while a replica drains, and, in the end, two replicas
behind Debian's nginx (`make test` installs it) with one stopped under 32 clients: no request
may fail. Every server runs the `seed` model with ONNX Runtime, the quickest to start.
"""

from __future__ import annotations

import contextlib
import getpass
import grp
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from drawings import draw, encode
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

HANDWRITTEN = Path(sys.executable).with_name("handwritten")
NGINX = Path("/usr/sbin/nginx")
HOST = "127.0.0.1"
MODEL = ["--model", "seed", "--runtime", "onnx"]
WAIT_SECONDS = 90
"""The longest any condition below is waited for before the test fails saying which."""
PREDICTED = {"route": "/api/predict", "method": "POST", "status": "200"}


SEVEN = encode(draw())


def free_port() -> int:
    with socket.create_server((HOST, 0)) as probe:
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], object], what: str, server: Server | None = None) -> None:
    """Poll `condition` until it holds; fail naming `what` (and the server's log) if not."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        if server is not None and server.process.poll() is not None:
            code = server.process.returncode
            pytest.fail(f"the server exited ({code}) before {what}:\n{server.output()}")
        time.sleep(0.05)
    pytest.fail(f"not within {WAIT_SECONDS} s: {what}\n{server.output() if server else ''}")


@dataclass
class Server:
    """One `handwritten serve` process and where it listens and logs."""

    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def output(self) -> str:
        return self.log.read_text()

    def predictions(self) -> float:
        """Predictions answered 200, as this server's /metrics counts them."""
        return metric(httpx2.get(f"{self.url}/metrics", timeout=10).text, **PREDICTED)

    def answered(self, workers: int = 1) -> bool:
        if self.output().count("Application startup complete.") < workers:
            return False
        with contextlib.suppress(httpx2.TransportError):
            return httpx2.get(f"{self.url}/api/health", timeout=5).status_code == 200
        return False


def metric(text: str, name: str = "handwritten_http_requests_total", **labels: str) -> float:
    """One sample of a Prometheus text exposition; 0 when absent (a counter never moved)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def stop(process: subprocess.Popen) -> None:
    """Stop a process this test started, if it still runs: politely, then for sure."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start `handwritten serve OPTIONS...` on a free port and wait until it answers; every
    server started is stopped when the test ends, whatever happened."""
    started: list[Server] = []

    def start(*options: str, workers: int = 1, env: dict | None = None) -> Server:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        command = [HANDWRITTEN, "serve", "--port", str(port), "--workers", str(workers)]
        with open(log, "w") as output:
            process = subprocess.Popen(
                [*command, *MODEL, *options], stdout=output, stderr=subprocess.STDOUT, env=env
            )
        server = Server(process, port, log)
        started.append(server)
        wait_for(lambda: server.answered(workers), f"serve on port {port} answers", server)
        return server

    yield start
    for server in started:
        stop(server.process)


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_workers_metrics_add_up_across_processes(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Whichever worker answers /metrics reports every worker's requests, read from the
    multiprocess folder `serve` makes (under TMPDIR) and removes when it stops."""
    server = start_server(workers=2, env={**os.environ, "TMPDIR": str(tmp_path)})
    (folder,) = tmp_path.glob("handwritten-metrics-*")
    sent = 0

    def shares() -> list[float]:
        """Each worker's own count, from its own file: the test's view of who served."""
        files = sorted(folder.glob("counter_*.db"))
        return [metric_of(MultiProcessCollector.merge([str(path)])) for path in files]

    def both_served() -> bool:
        nonlocal sent
        threads = [threading.Thread(target=predict_once, args=(server.url,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sent += len(threads)
        counts = shares()
        return len(counts) == 2 and min(counts) > 0

    wait_for(both_served, "both workers served some predictions", server)
    # A worker counts a request just after sending its answer, so the last may lag a moment.
    wait_for(lambda: sum(shares()) >= sent, f"the workers count all {sent} predictions", server)
    assert sum(shares()) == sent
    for _ in range(6):  # a new connection each time, so either worker may answer
        assert server.predictions() == sent
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0
    assert not folder.exists()


def predict_once(url: str) -> None:
    """One prediction on a connection of its own."""
    headers = {"Content-Type": "image/png"}
    response = httpx2.post(f"{url}/api/predict", content=SEVEN, headers=headers, timeout=30)
    assert response.status_code == 200, response.text


def metric_of(families: list) -> float:
    for family in families:
        for sample in family.samples:
            if sample.name == "handwritten_http_requests_total" and sample.labels == PREDICTED:
                return sample.value
    return 0.0


def test_sigterm_finishes_the_request_in_flight_then_exits_0(
    start_server: Callable[..., Server],
) -> None:
    """A photo upload is half sent when SIGTERM comes: the port closes at once, yet the
    upload, finished afterwards, is answered 200, and the process exits 0."""
    server = start_server()
    photo = encode(draw(size=2000, width=90).convert("RGB"), "JPEG")
    upload = socket.create_connection((HOST, server.port))
    head = (
        f"POST /api/predict-number HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {len(photo)}\r\n\r\n"
    ).encode()
    upload.sendall(head + photo[: len(photo) // 2])

    def in_progress() -> float:
        text = httpx2.get(f"{server.url}/metrics", timeout=10).text
        return metric(text, "handwritten_http_requests_in_progress")

    wait_for(lambda: in_progress() >= 2, "the upload is in progress (besides the scrape)", server)
    server.process.send_signal(signal.SIGTERM)
    wait_for(lambda: refuses_connections(server.port), "the port refuses new connections", server)
    assert server.process.poll() is None, "the server waits for the request in flight"
    upload.sendall(photo[len(photo) // 2 :])
    response = http.client.HTTPResponse(upload)
    response.begin()
    answer = json.loads(response.read())
    assert response.status == 200, answer
    assert answer["number"] == "7"
    assert upload.recv(1) == b"", "the server closes the connection after the answer"
    upload.close()
    assert server.process.wait(timeout=60) == 0
    assert '"POST /api/predict-number" 200' in server.output()
    assert refuses_connections(server.port)


def test_readiness_answers_503_while_draining_and_liveness_stays_200(
    start_server: Callable[..., Server],
) -> None:
    """With --drain, SIGTERM first turns /api/health/ready to 503 while the replica keeps
    answering, even through a second SIGTERM; then the port closes and the process exits 0."""
    server = start_server("--drain", "6")
    assert httpx2.get(f"{server.url}/api/health/ready").status_code == 200
    server.process.send_signal(signal.SIGTERM)

    def not_ready() -> bool:
        return httpx2.get(f"{server.url}/api/health/ready", timeout=5).status_code == 503

    wait_for(not_ready, "/api/health/ready answers 503", server)
    ready = httpx2.get(f"{server.url}/api/health/ready", timeout=5)
    assert ready.json()["detail"].startswith("shutting down: this replica takes no new requests")
    server.process.send_signal(signal.SIGTERM)
    time.sleep(1)  # time to handle it: a second SIGTERM must not cut the drain short
    assert httpx2.get(f"{server.url}/api/health", timeout=5).status_code == 200
    predict_once(server.url)
    wait_for(lambda: refuses_connections(server.port), "the port closes after the drain", server)
    assert server.process.wait(timeout=60) == 0


NGINX_CONF = """
user {user} {group};
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    upstream replicas {{
        server {host}:{first} max_fails=1 fail_timeout=10s;
        server {host}:{second} max_fails=1 fail_timeout=10s;
        keepalive 32;
    }}
    server {{
        listen {host}:{port};
        client_max_body_size 16m;
        location / {{
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # A replica that refuses, drops the connection or is shutting down: try the other,
            # for POST too (a prediction changes nothing, so it is safe to send twice).
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_connect_timeout 5s;
        }}
    }}
}}
"""


@pytest.fixture
def replicas(start_server: Callable[..., Server]) -> list[Server]:
    return [start_server(), start_server()]


@pytest.fixture
def nginx(tmp_path: Path, replicas: list[Server]) -> Iterator[tuple[str, Path]]:
    """Debian's nginx in front of both replicas, as this user, everything in tmp_path: its
    URL and its error log."""
    if not NGINX.is_file():
        pytest.fail(f"{NGINX} is missing: `make test` installs it, or: apt-get install nginx")
    folder = tmp_path / "nginx"
    folder.mkdir()
    port = free_port()
    group = grp.getgrgid(os.getegid()).gr_name
    conf = NGINX_CONF.format(
        user=getpass.getuser(),
        group=group,
        folder=folder,
        host=HOST,
        port=port,
        first=replicas[0].port,
        second=replicas[1].port,
    )
    (folder / "nginx.conf").write_text(conf)
    command = [NGINX, "-p", folder, "-c", folder / "nginx.conf", "-e", folder / "error.log"]
    with open(folder / "output.log", "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}"
    try:
        wait_for(lambda: _answers(url) or process.poll() is not None, "nginx answers")
        assert process.poll() is None, (folder / "output.log").read_text()
        yield url, folder / "error.log"
    finally:
        stop(process)


def _answers(url: str) -> bool:
    with contextlib.suppress(httpx2.TransportError):
        return httpx2.get(f"{url}/api/health", timeout=5).status_code == 200
    return False


@dataclass
class Load:
    """32 clients posting the seven through nginx until told to stop, each on its own
    keep-alive connection; every answer that is not a 200 reading 7 is a failure."""

    url: str
    clients: int = 32
    answered: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        self.answered = [0] * self.clients
        self.threads = [
            threading.Thread(target=self._client, args=(index,)) for index in range(self.clients)
        ]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def total(self) -> int:
        return sum(self.answered)

    def _client(self, index: int) -> None:
        host, port = self.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        while not self.done.is_set():
            try:
                connection.request("POST", "/api/predict", SEVEN, {"Content-Type": "image/png"})
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"client {index}: {exc!r}")
                connection.close()
                continue
            if response.status == 200 and json.loads(body)["digit"] == 7:
                self.answered[index] += 1
            else:
                self.failures.append(f"client {index}: {response.status} {body[:200]!r}")
        connection.close()


def test_a_replica_stopped_under_load_fails_no_request(
    nginx: tuple[str, Path], replicas: list[Server]
) -> None:
    """Once both replicas have served, one gets SIGTERM under 32 clients: its requests in
    flight finish, nginx sends the rest to the other, and not one request fails."""
    url, error_log = nginx
    stopped, kept = replicas
    with Load(url) as load:
        wait_for(lambda: min(r.predictions() for r in replicas) >= 20, "both replicas serve")
        stopped.process.send_signal(signal.SIGTERM)
        assert stopped.process.wait(timeout=60) == 0
        kept_before = kept.predictions()
        after_stop = load.total()
        wait_for(lambda: load.total() >= after_stop + 300, "300 more answers after the stop")
    assert load.failures == []
    assert kept.predictions() > kept_before
    kept.process.send_signal(signal.SIGTERM)  # so that its log is complete
    assert kept.process.wait(timeout=60) == 0
    served = [server.output().count('"POST /api/predict" 200') for server in replicas]
    assert min(served) > 0, served
    assert sum(served) >= load.total(), "every answer came from a replica (some twice)"
    upstream = f'upstream: "http://{HOST}:{stopped.port}/api/predict"'
    retried = [line for line in error_log.read_text().splitlines() if upstream in line]
    assert retried, "nginx never met the stopped replica failing, so nothing was tested"
