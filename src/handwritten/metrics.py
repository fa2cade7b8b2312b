"""What monitoring and load balancers watch: Prometheus metrics, and whether shutdown has begun.

`GET /metrics` answers in Prometheus' text format, made by the standard `prometheus_client`:
requests and errors by route and status code, a latency histogram by route, the requests in
progress and the model in use. Routes are labelled by their template (`/api/predict`,
`/static/{path}`), never by the raw path, so a client sending random paths cannot grow the
number of series.

Under `serve --workers N` each worker is its own process and would count only its own share;
`serve` then points prometheus_client's multiprocess mode at a fresh directory
(PROMETHEUS_MULTIPROC_DIR, see `shared_between_workers`), every worker writes its figures
there, and `/metrics` from any worker adds up all of them. With one worker, and in tests that
build the app directly, each app keeps its own registry.

On SIGTERM (or Ctrl+C) a worker marks itself as draining, so `/api/health/ready` answers 503
and a load balancer that polls it stops sending new requests, then, after `drain` seconds,
hands the signal to uvicorn, which stops accepting and finishes the requests in flight.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import FrameType
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
"""The route label of a request answered before any route took it, whatever its path: a 404,
or a 413 for a declared body over the limit."""
OTHER_METHOD = "other"
"""The method label of a request whose method HTTP does not define: a client may send any
token there, and each new label value would be a new series, kept for good."""
METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
)
"""The methods of RFC 9110 and PATCH: the label values a method may have, besides OTHER_METHOD."""
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)

requests_log = logging.getLogger("handwritten.serve")
"""One line per request, on standard output (see `serve._log_config`)."""


class Metrics:
    """The service's figures: on a registry of this app's own, or, in multiprocess mode, in
    files every worker writes and any worker's `/metrics` adds up."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.shared = bool(os.environ.get(MULTIPROCESS_ENV))
        self.requests = Counter(
            "handwritten_http_requests",
            "Requests answered, by route template, method and status code.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.errors = Counter(
            "handwritten_http_errors",
            "Requests answered with a 4xx (the client's mistake, e.g. 422 for a blank canvas) "
            "or 5xx (the server's) status, by route template and status code.",
            ("route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "handwritten_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template.",
            ("route",),
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "handwritten_http_requests_in_progress",
            "Requests being answered now, from their headers to the end of the answer (a "
            "scrape counts itself): what a shutdown waits for.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.model = Gauge(
            "handwritten_model_info",
            "The model answering (1 while a worker serves it), by name and runtime.",
            ("model", "runtime"),
            registry=self.registry,
            multiprocess_mode="livemax",
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        label = method if method in METHODS else OTHER_METHOD
        self.requests.labels(route, label, str(status)).inc()
        if status >= 400:
            self.errors.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def exposition(self) -> bytes:
        """Every figure in Prometheus' text format: all workers' in multiprocess mode."""
        if not self.shared:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


class RequestMetrics:
    """ASGI middleware counting every HTTP request by the template of the route that took it,
    and logging one line per request: client, request line, status and time taken. The path
    is logged percent-encoded, as uvicorn's access log writes it, so a `%0d%0a` in a request
    cannot start a forged line in the log.

    The route is read once the app has answered: the router records the route it chose in
    the scope (`scope["route"]`), the only place that knows it for the routes FastAPI includes
    from a router. It does not for mounts (the static files), which are matched beforehand.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        mount = _mount_of(scope)
        status = 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, noting_status)
        finally:
            self.metrics.in_progress.dec()
            seconds = time.perf_counter() - start
            route = template(scope.get("route") or mount)
            self.metrics.observe(route, scope["method"], status, seconds)
            host, port = scope.get("client") or ("-", "-")
            line = f"{scope['method']} {quote(scope['path'])}"
            requests_log.info('%s:%s - "%s" %d %.1f ms', host, port, line, status, seconds * 1000)


def _mount_of(scope: Scope) -> Mount | None:
    """The mount this request's path falls under, matched before the app runs: a mount
    rewrites the scope's root path as it passes the request on."""
    for route in scope["app"].routes:
        if isinstance(route, Mount) and route.matches(scope)[0] is Match.FULL:
            return route
    return None


def template(route: BaseRoute | None) -> str:
    """A route's path template (for a 405 too: the path was right, the method not), or
    UNMATCHED."""
    path = getattr(route, "path", None)
    if path is None:
        return UNMATCHED
    return f"{path}/{{path}}" if isinstance(route, Mount) else path


def install(app: FastAPI) -> None:
    """Count every request and serve the figures at `GET /metrics`."""
    app.state.metrics = Metrics()
    app.state.draining = False
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    app.add_api_route("/metrics", _metrics, include_in_schema=False)


def _metrics(request: Request) -> Response:
    """Plain `def`: collecting reads the workers' files, so FastAPI runs it in a thread."""
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@asynccontextmanager
async def watching(app: FastAPI, drain: float) -> AsyncIterator[None]:
    """From a worker's start-up, once its model is loaded, to its shutdown: publish the model
    and watch for the shutdown signal; at the end, hand back this process's live figures."""
    app.state.metrics.model.labels(app.state.model_name, app.state.runtime).set(1)
    restore = _watch_shutdown(app, drain)
    try:
        yield
    finally:
        restore()
        if app.state.metrics.shared:
            multiprocess.mark_process_dead(os.getpid())


def _watch_shutdown(app: FastAPI, drain: float) -> Callable[[], None]:
    """Put a handler before uvicorn's for SIGTERM and SIGINT that marks the app as draining
    and passes the signal on `drain` seconds later. A second Ctrl+C passes at once; a second
    SIGTERM is absorbed, since one often comes twice (systemd signals every process of the
    service, and uvicorn's parent process signals its workers too). Returns what puts
    uvicorn's handlers back.

    Only uvicorn's own handlers are wrapped: a Python signal handler runs in the main thread,
    so an app run elsewhere (TestClient runs it in a thread) has none to wrap.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in SHUTDOWN_SIGNALS}
    previous = {sig: handler for sig, handler in previous.items() if callable(handler)}

    def begin_shutdown(signum: int, frame: FrameType | None) -> None:
        again = app.state.draining
        app.state.draining = True
        if drain <= 0 or (again and signum == signal.SIGINT):
            previous[signum](signum, frame)
        elif not again:
            loop.call_soon_threadsafe(loop.call_later, drain, previous[signum], signum, None)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    for sig in previous:
        signal.signal(sig, begin_shutdown)
    return restore


@contextmanager
def shared_between_workers(workers: int) -> Iterator[None]:
    """With several workers, a fresh multiprocess directory for the time `serve` runs, set in
    the environment before uvicorn starts them (they inherit it), removed afterwards.

    Fresh, because figures left by an earlier run would be added to this one's.
    """
    if workers < 2:
        yield
        return
    folder = tempfile.mkdtemp(prefix="handwritten-metrics-")
    os.environ[MULTIPROCESS_ENV] = folder
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_ENV]
        shutil.rmtree(folder, ignore_errors=True)
