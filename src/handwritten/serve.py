"""The web service: a drawing page and a JSON API over the same preprocessing and model.

The page at `/` is plain HTML, CSS and JavaScript from `static/` and talks only to the API, so
whatever the page can do a script can do too. Preprocessing and inference are CPU-bound and
run in a worker thread, never on the event loop, so one slow image does not stall the others.
Every mistake a client can make (no image, a broken one, a blank canvas, too many bytes) is
answered 4xx with one JSON message, `{"detail": "..."}`, saying what was wrong and what to send.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import io
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, Literal, TypeVar

import anyio
import cv2
import numpy as np
import uvicorn
import uvicorn.config
from fastapi import APIRouter, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from PIL import Image
from pydantic import BaseModel, Field
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

from handwritten import __version__, metrics
from handwritten import collect as corrections
from handwritten.api import (
    Classifier,
    Prediction,
    Reader,
    load,
    load_reader,
    predict_image,
    read_number,
)
from handwritten.errors import HandwrittenError
from handwritten.http_errors import ErrorOut, http_error, invalid_request
from handwritten.registry import DEFAULT_MODEL
from handwritten.runtime import RUNTIME_ENV, THREADS_ENV

MAX_BODY_BYTES = 16 * 1024 * 1024
"""A 12-megapixel phone photo is 3-8 MB as JPEG; the page scales photos down before sending."""
MODEL_ENV = "HANDWRITTEN_SERVE_MODEL"
COLLECT_ENV = "HANDWRITTEN_SERVE_COLLECT"
"""The `serve --collect` folder, passed to the workers like the model."""
NUMBER_READER_ENV = "HANDWRITTEN_SERVE_READER"
"""The `serve --reader` choice, passed to the workers like the model."""
DRAIN_ENV = "HANDWRITTEN_SERVE_DRAIN"
READ_TIMEOUT_ENV = "HANDWRITTEN_SERVE_READ_TIMEOUT"
READ_TIMEOUT_SECONDS = 60.0
"""How long a client may take to send a request's headers, and may pause while sending its
body, before the connection is closed (nginx's client_header_timeout and
client_body_timeout, and their default). uvicorn has no such limit of its own: a client
that stops mid-request held its connection, and a graceful shutdown, forever."""
GRACE_SECONDS = 30.0
"""After SIGTERM, how long requests in flight may take to finish before they are cancelled."""
STATIC_DIR = Path(__file__).parent / "static"
RAW_IMAGE_TYPES = ("image/", "application/octet-stream")
SHUTTING_DOWN = (
    "the server shut down before this request was answered; send it again (to another "
    "replica, or once this one is back)."
)
TOO_LARGE = (
    f"request body is over the {MAX_BODY_BYTES // 2**20} MB limit; "
    "send a smaller image (a photo of a number reads as well at 2,000 pixels a side)."
)


class PredictionOut(BaseModel):
    """The digit read in one image, how sure the answer is, and what the model saw so a
    client can show it."""

    status: Literal["digit", "unsure", "not-a-digit"] = Field(
        description="digit: a sure answer; unsure: `digit` is the best guess and "
        "`alternatives` the other digits it could be; not-a-digit: a letter, symbol, doodle "
        "or several digits, and `digit` is null"
    )
    digit: int | None = Field(ge=0, le=9, description="the digit read (null for not-a-digit)")
    confidence: float = Field(ge=0, le=1, description="the probability of the most probable digit")
    alternatives: list[int] = Field(
        description="when unsure, the other digits it could be, most probable first"
    )
    probabilities: list[float] = Field(
        min_length=10, max_length=10, description="the probability of each digit, 0 to 9"
    )
    not_a_digit: float | None = Field(
        ge=0, le=1, description="the probability that it is no digit (null: the model cannot say)"
    )
    image: str = Field(
        description="the 28x28 image the model saw (white ink on black, like MNIST), "
        "as a base64-encoded PNG"
    )


class DigitOut(PredictionOut):
    """One digit of a number, with where it was found."""

    box: list[int] = Field(
        min_length=4,
        max_length=4,
        description="where the digit is: left, top, right, bottom, in the image's pixels",
    )


class NumberOut(BaseModel):
    """The digits of one number written on a line, read left to right."""

    status: Literal["sure", "unsure"] = Field(
        description='"sure" when every digit is sure, else "unsure" (see each digit\'s status)'
    )
    number: str = Field(
        description="the best reading of every digit, in reading order, as a string; a digit "
        'the model doubts (even one it takes for "not a digit") is its best guess, marked '
        '"unsure" in `digits`'
    )
    digits: list[DigitOut] = Field(description="each digit, left to right")
    width: int = Field(description="the image's width in pixels, after EXIF rotation")
    height: int = Field(description="the image's height in pixels, after EXIF rotation")


class HealthOut(BaseModel):
    """Whether the service is up, and which model answers."""

    status: Literal["ok"]
    model: str = Field(description="the model's name or the model file, as chosen")
    path: str = Field(description="the model file loaded")
    runtime: Literal["onnx", "keras"] = Field(description="what runs the network")


ERRORS = {
    400: {"model": ErrorOut, "description": "Empty body, or bytes that are not a readable image"},
    413: {"model": ErrorOut, "description": f"Body over {MAX_BODY_BYTES:,} bytes"},
    415: {"model": ErrorOut, "description": "Body that is neither an image nor an upload"},
    422: {"model": ErrorOut, "description": "No digit in the image (blank), or a bad upload"},
}
RAW_IMAGE_BODY = {
    "requestBody": {
        "content": {
            kind: {"schema": {"type": "string", "format": "binary"}}
            for kind in ("image/png", "image/jpeg", "application/octet-stream")
        }
    }
}

api = APIRouter(prefix="/api", tags=["api"])


@api.get("/health", response_model=HealthOut, summary="Is the service up, with which model")
async def health(request: Request) -> HealthOut:
    """Answers only once the model is loaded: start-up loads it before serving."""
    state = request.app.state
    return HealthOut(
        status="ok", model=state.model_name, path=str(state.model_path), runtime=state.runtime
    )


@api.get(
    "/health/ready",
    response_model=HealthOut,
    responses={503: {"model": ErrorOut, "description": "Shutting down: send requests elsewhere"}},
    summary="Should a load balancer send requests here",
)
async def ready(request: Request) -> HealthOut:
    """Readiness: 200 while serving; 503 from the moment shutdown begins (SIGTERM), while the
    requests in flight finish, so a load balancer polling it stops sending new ones.
    `/api/health` stays the liveness check: it answers 200 until the process stops."""
    if request.app.state.draining:
        raise HTTPException(
            503, "shutting down: this replica takes no new requests; send them to another."
        )
    return await health(request)


# Monitors ask with HEAD; FastAPI answers it only where asked to (not in the schema: HTTP
# defines HEAD as GET without the body).
api.add_api_route("/health", health, methods=["HEAD"], include_in_schema=False)
api.add_api_route("/health/ready", ready, methods=["HEAD"], include_in_schema=False)


@api.post(
    "/predict",
    response_model=PredictionOut,
    responses=ERRORS,
    openapi_extra=RAW_IMAGE_BODY,
    summary="Read the digit in an image",
)
async def predict(
    request: Request,
    file: Annotated[UploadFile | None, File(description="the image, as a multipart upload")] = None,
) -> PredictionOut:
    """Send a PNG or JPEG as the multipart field `file`, or as the raw request body with an
    `image/*` or `application/octet-stream` content type. Dark ink on light paper, light on
    dark, or ink in the alpha channel all work; the digit may be anywhere and any size.
    The answer's `status` says how far to trust it; a blank image is a 422 (no ink), an
    unreadable one a 400.
    """
    data, name = await read_image_bytes(request, file)
    return await _read_in_thread(request, read_digit, data, name)


@api.post(
    "/predict-number",
    response_model=NumberOut,
    responses=ERRORS,
    openapi_extra=RAW_IMAGE_BODY,
    summary="Read several digits written side by side",
)
async def predict_number(
    request: Request,
    file: Annotated[UploadFile | None, File(description="the image, as a multipart upload")] = None,
) -> NumberOut:
    """The same uploads as /api/predict: a photo or scan of paper, or a drawing, of a number
    on one line (a year, a meter reading, a postcode). The lighting is flattened, rules, page
    edges and specks are removed, and the number of the main line is read whole by the
    sequence reader (`serve --reader none`: digit by digit), left to right, each digit with
    its box in the image (after EXIF rotation)."""
    data, name = await read_image_bytes(request, file)
    read = functools.partial(read_digits, reader=request.app.state.number_reader)
    return await _read_in_thread(request, read, data, name)


Answer = TypeVar("Answer", bound=BaseModel)


async def _read_in_thread(
    request: Request, read: Callable[[Classifier, bytes, str], Answer], data: bytes, name: str
) -> Answer:
    """Run `read` (CPU-bound) off the event loop, one request at a time per worker.

    Starlette's pool would run up to 40 at once: on a busy server they take turns at the GIL
    and the cores, and each request costs more CPU than when they queue for one thread.
    """
    state = request.app.state
    return await anyio.to_thread.run_sync(read, state.classifier, data, name, limiter=state.reader)


async def read_image_bytes(request: Request, file: UploadFile | None) -> tuple[bytes, str]:
    """The uploaded image and a name for it in error messages, from either upload style."""
    if file is not None:
        data, name = await file.read(), file.filename or "file"
    elif _media_type(request) == "multipart/form-data":
        raise HTTPException(422, "the upload has no field named `file`; send the image as `file`.")
    elif _media_type(request).startswith(RAW_IMAGE_TYPES):
        data, name = await _raw_body(request), "request body"
    else:
        raise HTTPException(
            415,
            f"content type {_media_type(request) or '(none)'} is not an image; send the image "
            "as the multipart field `file`, or as the body with Content-Type image/png.",
        )
    if not data:
        raise HTTPException(400, f"{name}: is empty; send a PNG or JPEG image of one digit.")
    return data, name


async def _raw_body(request: Request) -> bytes:
    """The body, or a 400 when the client hangs up before sending all of it (nobody reads
    that answer, but the log shows a client's mistake, not a server error)."""
    try:
        return await request.body()
    except ClientDisconnect:
        raise HTTPException(400, "the client hung up before the body ended.") from None


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def read_digit(classifier: Classifier, data: bytes, name: str) -> PredictionOut:
    """Preprocess and classify one image; CPU-bound, so callers run it in a thread."""
    prediction = predict_image(data, classifier, name)
    if prediction.error:
        raise HTTPException(400, prediction.error)
    if prediction.status == "no-ink":
        raise HTTPException(422, _no_ink(name))
    return _prediction_out(prediction)


def read_digits(
    classifier: Classifier, data: bytes, name: str, reader: Reader | None = None
) -> NumberOut:
    """Read a number, whole by the sequence reader when there is one, else digit by digit;
    CPU-bound, so callers run it in a thread."""
    reading = read_number(data, classifier, name, reader)
    if reading.error:
        raise HTTPException(400, reading.error)
    if not reading.digits:
        raise HTTPException(422, _no_ink(name))
    width, height = reading.size
    digits = [
        DigitOut(**_prediction_out(p).model_dump(), box=list(p.box)) for p in reading.positions()
    ]
    return NumberOut(
        status=reading.status, number=reading.number, digits=digits, width=width, height=height
    )


def _no_ink(name: str) -> str:
    return f"no digit found: {name} has no ink; draw a digit or send a picture of one."


def _prediction_out(prediction: Prediction) -> PredictionOut:
    return PredictionOut(
        status=prediction.status,
        digit=prediction.digit,
        confidence=prediction.confidence,
        alternatives=prediction.alternatives,
        probabilities=prediction.probabilities,
        not_a_digit=prediction.not_a_digit,
        image=_png_base64(prediction.image),
    )


def _png_base64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class BodyLimit:
    """Answer 413 once a request body passes `max_bytes`, counting bytes as they arrive.

    A declared Content-Length over the limit is refused before any byte is read; a chunked
    body, or one whose Content-Length lies, is cut off when the running count passes the
    limit. (FastAPI's own route limit answers in plain text, not with the JSON every other
    error here has.)
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await JSONResponse({"detail": TOO_LARGE}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, TOO_LARGE)
            return message

        await self.app(scope, counted, send)


class AnswerCancelled:
    """Answer 503, quietly, a request that graceful shutdown cancels.

    When `--grace` runs out, uvicorn cancels the requests still running; the CancelledError
    reached uvicorn, which logged a 75-line traceback and answered 500. A request whose
    answer has not begun gets a 503 instead; one whose answer has begun just ends, and
    uvicorn closes its connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, noting_start)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # The task ends here, answered: nothing else is cancelled.
            if not started:
                answer = JSONResponse({"detail": SHUTTING_DOWN}, 503, {"Connection": "close"})
                await answer(scope, receive, send)


def create_app(
    classifier: Classifier | None = None,
    model: str | None = None,
    drain: float = 0,
    collect: str | os.PathLike | None = None,
    number_reader: str | os.PathLike | None = None,
) -> FastAPI:
    """The application around `classifier`, or around the model `model` names (a registered
    name or a .keras or .onnx file), loaded once at start-up. On SIGTERM it answers 503 at
    /api/health/ready for `drain` seconds before uvicorn stops accepting (see metrics.py).
    With `collect` (a folder), the page offers to correct a wrong answer and the corrections
    are saved there (see collect.py); without it nothing is ever written. `number_reader`
    chooses what reads whole numbers, as `api.load_reader` does (default: the shipped reader).

    The API docs at /docs carry their own copy of Swagger UI, so they work offline too.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.classifier = classifier or load(model)
        app.state.model_name = model or _name_of(app.state.classifier)
        app.state.model_path = Path(getattr(app.state.classifier, "path", "") or "").resolve()
        app.state.runtime = "onnx" if hasattr(app.state.classifier, "session") else "keras"
        app.state.number_reader = load_reader(number_reader)
        app.state.reader = anyio.CapacityLimiter(1)
        async with metrics.watching(app, drain):
            yield

    app = FastAPIOffline(
        title="handwritten",
        version=__version__,
        summary="Read a handwritten digit from a drawing or a photo.",
        lifespan=lifespan,
    )
    app.include_router(api)
    app.include_router(corrections.router)
    app.state.collection = corrections.open_collection(collect) if collect else None
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(AnswerCancelled)
    metrics.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_api_route("/", _page, methods=["GET", "HEAD"], include_in_schema=False)
    return app


def _name_of(classifier: Classifier) -> str:
    """The model's name from its card, else its file's name."""
    card = getattr(classifier, "card", None) or {}
    path = getattr(classifier, "path", None)
    return str(card.get("name") or (Path(path).stem if path else DEFAULT_MODEL))


async def _page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")


def app_from_env() -> FastAPI:
    """The app as uvicorn's worker processes build it: they import it by name, so the model
    and runtime chosen on the command line reach them through the environment.

    OpenCV's threads are turned off: a worker reads one image at a time, the other cores are
    other workers', and for a drawing the threads' start and stop cost more than they save.
    """
    cv2.setNumThreads(1)
    return create_app(
        model=os.environ.get(MODEL_ENV),
        drain=float(os.environ.get(DRAIN_ENV, 0)),
        collect=os.environ.get(COLLECT_ENV) or None,
        number_reader=os.environ.get(NUMBER_READER_ENV) or None,
    )


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with Nagle's algorithm off on every connection.

    asyncio turns Nagle off (TCP_NODELAY) only on sockets created with proto IPPROTO_TCP.
    With --workers above 1, uvicorn binds the listening socket itself with proto 0, so the
    connections it accepts kept Nagle on: a response sent as headers then body waited for the
    client's delayed ACK, about 40 ms a request. One worker was not affected.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        connection = transport.get_extra_info("socket")
        if connection is not None and connection.family in (socket.AF_INET, socket.AF_INET6):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


class TimedH11Protocol(NoDelayH11Protocol):
    """uvicorn's HTTP/1.1 protocol (Nagle off) with the read timeouts uvicorn lacks.

    A request's headers must all arrive within `read_timeout` seconds of the connection's
    start (or of the previous answer's end), and its body may pause no longer than that
    between pieces; otherwise the connection is closed. Without it, connections that sent
    nothing, part of their headers or part of their body were held open forever, and a
    graceful shutdown waited on them. While the server itself has stopped reading (its
    buffer is full) or is working on the request, no clock runs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = float(os.environ.get(READ_TIMEOUT_ENV, READ_TIMEOUT_SECONDS))
        self.read_deadline: asyncio.TimerHandle | None = None
        self.read_phase: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._follow_phase(received=False)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_phase(received=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_phase(received=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _current_phase(self) -> str:
        """headers: waiting for a request; body: reading one; working: answering one."""
        if self.cycle is None or self.cycle.response_complete:
            return "headers"
        return "body" if self.cycle.more_body else "working"

    def _follow_phase(self, received: bool) -> None:
        """Start the clock as each phase begins; restart it as each piece of body comes."""
        phase = self._current_phase()
        if phase == "working" or self.transport.is_closing():
            self._disarm()
        elif phase != self.read_phase or (phase == "body" and received):
            self._disarm()
            self.read_deadline = self.loop.call_later(self.read_timeout, self._timed_out)
        self.read_phase = phase

    def _timed_out(self) -> None:
        self.read_deadline = None
        if self.flow.read_paused:  # The server stopped reading, not the client sending.
            self.read_deadline = self.loop.call_later(self.read_timeout, self._timed_out)
        elif not self.transport.is_closing():
            self.transport.close()

    def _disarm(self) -> None:
        if self.read_deadline is not None:
            self.read_deadline.cancel()
            self.read_deadline = None


class ClosingMultiprocess(Multiprocess):
    """uvicorn's supervisor of `--workers N`, which also closes its own copy of the listening
    socket when it stops them.

    The workers stop accepting once their drain ends, but the parent's copy kept the port
    open: the kernel went on accepting connections nobody would answer until the parent
    exited. With it closed, the port refuses them as soon as the last worker closes its own.
    """

    def terminate_all(self) -> None:
        for listening in self.sockets:
            listening.close()
        super().terminate_all()


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    model: str | None = None,
    workers: int = 1,
    runtime: str | None = None,
    grace: float = GRACE_SECONDS,
    drain: float = 0,
    collect: str | os.PathLike | None = None,
    read_timeout: float = READ_TIMEOUT_SECONDS,
    number_reader: str | None = None,
) -> None:
    """Run the service under uvicorn until interrupted.

    The address and the model are checked here first, so a port in use or a bad --model is
    one clear error line before anything starts, not a traceback from every worker.

    On SIGTERM: /api/health/ready answers 503 for `drain` seconds, then the port closes and
    the requests in flight get up to `grace` seconds to finish; the exit status is then 0.

    `collect` is the folder corrections are saved in; it is made (or checked) here too.
    `read_timeout` bounds how long a client may take over a request (see TimedH11Protocol).
    `number_reader` chooses what reads whole numbers (see `api.load_reader`).
    """
    if read_timeout <= 0:
        raise HandwrittenError(
            f"--read-timeout {read_timeout:g}: every connection would be closed at once; "
            "give the seconds a client may take to send a request, above 0 (default 60)."
        )
    _check_address(host, port)
    load(model, runtime)
    load_reader(number_reader)
    if number_reader:
        os.environ[NUMBER_READER_ENV] = number_reader
    if collect:
        os.environ[COLLECT_ENV] = str(corrections.prepare_folder(Path(collect)))
    os.environ[MODEL_ENV] = model or DEFAULT_MODEL
    os.environ[DRAIN_ENV] = str(drain)
    if runtime:
        os.environ[RUNTIME_ENV] = runtime
    os.environ[THREADS_ENV] = "1"
    os.environ[READ_TIMEOUT_ENV] = str(read_timeout)
    signal.signal(signal.SIGTERM, _stop)
    options = {
        "app": "handwritten.serve:app_from_env",
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "http": "handwritten.serve:TimedH11Protocol",
        "log_config": _log_config(),
        "access_log": False,
        "timeout_graceful_shutdown": grace,
    }
    with metrics.shared_between_workers(workers):
        if workers > 1:
            config = uvicorn.Config(**options)
            ClosingMultiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            uvicorn.run(**options)


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM outside uvicorn's own handling: before it starts, and after its graceful
    shutdown, which raises the signal again once done. A clean stop, so exit status 0."""
    raise SystemExit(0)


def _check_address(host: str, port: int) -> None:
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise HandwrittenError(
            f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); "
            "choose another --port or stop the program using it, or check --host."
        ) from None


def _log_config() -> dict:
    """Uvicorn's logging, plus our one line per request on standard output."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["handlers"]["requests"] = {**config["handlers"]["access"], "formatter": "default"}
    config["loggers"]["handwritten"] = {"handlers": ["requests"], "level": "INFO"}
    return config
