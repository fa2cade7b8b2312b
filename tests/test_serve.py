"""The web service in-process: the JSON API, its errors, the page's files and the serve command."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import socket
from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import pytest
import uvicorn
import uvicorn.server
from drawings import draw, encode
from fastapi.testclient import TestClient
from PIL import Image
from uvicorn.protocols.http.h11_impl import H11Protocol

from handwritten.cli import main
from handwritten.predict import load_digit
from handwritten.registry import resolve_model
from handwritten.runtime import RUNTIME_ENV, onnx_path
from handwritten.serve import (
    MAX_BODY_BYTES,
    MODEL_ENV,
    AnswerCancelled,
    NoDelayH11Protocol,
    app_from_env,
    create_app,
)

SEVEN = encode(draw())
BLANK = encode(Image.new("L", (280, 280), 255))


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(model="seed")) as client:
        yield client


def test_health_names_the_model_in_use(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "model": "seed",
        "path": str(onnx_path(resolve_model("seed")).resolve()),
        "runtime": "onnx",
    }


def test_the_app_serves_the_classifier_it_is_given() -> None:
    class AlwaysThree:
        path = None
        card: ClassVar = {"name": "always-three"}

        def probabilities(self, images: np.ndarray) -> np.ndarray:
            return np.tile(np.eye(10, dtype=np.float32)[3], (len(images), 1))

    with TestClient(create_app(AlwaysThree())) as client:
        assert client.get("/api/health").json()["model"] == "always-three"
        response = client.post("/api/predict", content=SEVEN, headers={"Content-Type": "image/png"})
        assert response.json()["digit"] == 3


class Fixed:
    """A classifier giving the same output for every image, with the default thresholds."""

    path = None

    def __init__(self, row: list[float]) -> None:
        self.row = np.array(row, dtype=np.float32)
        self.card = {"name": "fixed"}

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return np.tile(self.row, (len(images), 1))


@pytest.mark.parametrize(
    ("row", "status", "digit", "alternatives"),
    [
        ([0.0] * 10 + [1.0], "not-a-digit", None, []),
        ([0, 0, 0, 0, 0, 0.4, 0.55, 0, 0, 0, 0.05], "unsure", 6, [5]),
        ([0, 0, 0, 0, 0, 0, 0, 0.97, 0, 0, 0.03], "digit", 7, []),
    ],
)
def test_every_status_is_an_answer_not_an_error(row, status, digit, alternatives) -> None:
    # Numbers read digit by digit here (`none`): the fixed classifier answers every position.
    with TestClient(create_app(Fixed(row), number_reader="none")) as client:
        response = client.post("/api/predict", content=SEVEN, headers={"Content-Type": "image/png"})
        number = client.post(
            "/api/predict-number", content=SEVEN, headers={"Content-Type": "image/png"}
        )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["status"], answer["digit"], answer["alternatives"]) == (
        status,
        digit,
        alternatives,
    )
    assert answer["not_a_digit"] == pytest.approx(row[10])
    assert number.status_code == 200, number.text
    # In a number every position is answered: "not a digit" becomes unsure, with its best digit.
    best = int(np.argmax(row[:10]))
    assert number.json()["number"] == str(best)
    assert number.json()["status"] == ("sure" if status == "digit" else "unsure")
    [position] = number.json()["digits"]
    assert (position["status"], position["digit"]) == (
        "digit" if status == "digit" else "unsure",
        best,
    )


def test_workers_take_the_runtime_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODEL_ENV, "seed")
    monkeypatch.setenv(RUNTIME_ENV, "keras")
    with TestClient(app_from_env()) as client:
        health = client.get("/api/health").json()
        assert health["runtime"] == "keras"
        assert health["path"] == str(resolve_model("seed").resolve())


def test_a_drawn_seven_is_read_and_the_model_input_returned(client: TestClient) -> None:
    response = client.post("/api/predict", content=SEVEN, headers={"Content-Type": "image/png"})
    assert response.status_code == 200
    answer = response.json()
    assert answer["digit"] == 7
    assert len(answer["probabilities"]) == 10
    # The digits' probabilities and "not a digit" (for a network that has it) make one.
    assert sum(answer["probabilities"]) + (answer["not_a_digit"] or 0) == pytest.approx(
        1.0, abs=1e-5
    )
    assert answer["status"] == "digit"
    assert answer["alternatives"] == []
    assert answer["confidence"] == max(answer["probabilities"])
    with Image.open(io.BytesIO(base64.b64decode(answer["image"]))) as seen:
        assert seen.format == "PNG"
        np.testing.assert_array_equal(np.asarray(seen), load_digit(SEVEN))


@pytest.mark.parametrize(
    ("style", "kind", "media_type"),
    [
        ("raw", "PNG", "image/png"),
        ("raw", "JPEG", "image/jpeg"),
        ("raw", "PNG", "application/octet-stream"),
        ("multipart", "PNG", "image/png"),
        ("multipart", "JPEG", "image/jpeg"),
    ],
)
def test_every_upload_style_reads_the_seven(
    client: TestClient, style: str, kind: str, media_type: str
) -> None:
    data = encode(draw().convert("RGB"), kind)
    if style == "raw":
        response = client.post("/api/predict", content=data, headers={"Content-Type": media_type})
    else:
        upload = {"file": (f"seven.{kind.lower()}", data, media_type)}
        response = client.post("/api/predict", files=upload)
    assert response.status_code == 200, response.text
    assert response.json()["digit"] == 7


TRUNCATED = SEVEN[: len(SEVEN) // 2]
BAD_INPUTS = {
    "text-body": (b"hello", "image/png", 400, "request body: not a readable image"),
    "truncated-png": (TRUNCATED, "image/png", 400, "request body: not a readable image"),
    "empty-body": (b"", "image/png", 400, "request body: is empty"),
    "blank-canvas": (BLANK, "image/png", 422, "no digit found: request body has no ink"),
    "text-content-type": (SEVEN, "text/plain", 415, "content type text/plain is not an image"),
    "json-content-type": (b"{}", "application/json", 415, "content type application/json is not"),
    "no-content-type": (SEVEN, None, 415, "content type (none) is not an image"),
}


@pytest.mark.parametrize(
    ("body", "media_type", "status", "message"), BAD_INPUTS.values(), ids=list(BAD_INPUTS)
)
def test_bad_raw_bodies_get_a_json_error(
    client: TestClient, body: bytes, media_type: str | None, status: int, message: str
) -> None:
    headers = {"Content-Type": media_type} if media_type else {}
    response = client.post("/api/predict", content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"].startswith(message)


BAD_UPLOADS = {
    "text-file": ({"file": ("notes.png", b"hello", "image/png")}, 400, "notes.png: not a readable"),
    "truncated-file": (
        {"file": ("cut.png", TRUNCATED, "image/png")},
        400,
        "cut.png: not a readable",
    ),
    "empty-file": ({"file": ("empty.png", b"", "image/png")}, 400, "empty.png: is empty"),
    "blank-file": ({"file": ("blank.png", BLANK, "image/png")}, 422, "no digit found: blank.png"),
    "wrong-field": ({"image": ("seven.png", SEVEN, "image/png")}, 422, "the upload has no field"),
    "text-field": ({"file": (None, "hello")}, 422, "file: sent as text, not as a file; send"),
}


@pytest.mark.parametrize(
    ("files", "status", "message"), BAD_UPLOADS.values(), ids=list(BAD_UPLOADS)
)
def test_bad_uploads_get_a_json_error_naming_the_file_or_field(
    client: TestClient, files: dict, status: int, message: str
) -> None:
    response = client.post("/api/predict", files=files)
    assert response.status_code == status
    assert response.json()["detail"].startswith(message)


def test_a_body_at_the_limit_is_read_and_one_byte_more_is_refused(client: TestClient) -> None:
    at_limit = client.post(
        "/api/predict", content=bytes(MAX_BODY_BYTES), headers={"Content-Type": "image/png"}
    )
    assert at_limit.status_code == 400
    over = client.post(
        "/api/predict", content=bytes(MAX_BODY_BYTES + 1), headers={"Content-Type": "image/png"}
    )
    assert over.status_code == 413
    limit = MAX_BODY_BYTES // 2**20
    assert over.json()["detail"].startswith(f"request body is over the {limit} MB limit")


def test_the_limit_holds_without_a_content_length(client: TestClient) -> None:
    """A chunked body declares no size: the bytes are counted as they arrive."""

    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield bytes(MAX_BODY_BYTES // 2)

    response = client.post("/api/predict", content=chunks(), headers={"Content-Type": "image/png"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert f"{MAX_BODY_BYTES // 2**20} MB limit" in response.json()["detail"]


def test_the_limit_holds_for_a_multipart_upload(client: TestClient) -> None:
    big = {"file": ("big.png", bytes(MAX_BODY_BYTES), "image/png")}
    response = client.post("/api/predict", files=big)
    assert response.status_code == 413
    assert f"{MAX_BODY_BYTES // 2**20} MB limit" in response.json()["detail"]


def test_bad_input_never_stops_the_service(client: TestClient) -> None:
    for body, media_type, _, _ in BAD_INPUTS.values():
        client.post("/api/predict", content=body, headers={"Content-Type": media_type or ""})
    response = client.post("/api/predict", files={"file": ("seven.png", SEVEN, "image/png")})
    assert response.json()["digit"] == 7


def test_each_request_is_logged_on_one_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="handwritten.serve"):
        client.get("/api/health")
        client.post("/api/predict", content=BLANK, headers={"Content-Type": "image/png"})
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert '"GET /api/health" 200' in lines[0]
    assert '"POST /api/predict" 422' in lines[1]
    assert lines[1].endswith(" ms")


def test_openapi_documents_both_upload_styles_and_the_answer(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/api/predict"]["post"]
    assert {"multipart/form-data", "image/png", "image/jpeg", "application/octet-stream"} <= set(
        operation["requestBody"]["content"]
    )
    answer = schema["components"]["schemas"]["PredictionOut"]["properties"]
    assert set(answer) == {
        "status",
        "digit",
        "confidence",
        "alternatives",
        "probabilities",
        "not_a_digit",
        "image",
    }
    assert {"200", "400", "413", "415", "422"} <= set(operation["responses"])
    assert "/api/health" in schema["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "https://" not in docs.text
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200


def test_the_page_and_its_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<canvas id="canvas"' in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text
        assert client.get(asset).status_code == 200


def test_workers_take_the_model_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    model_file = str(resolve_model("seed"))
    monkeypatch.setenv(MODEL_ENV, model_file)
    with TestClient(app_from_env()) as client:
        assert client.get("/api/health").json()["model"] == model_file
        response = client.post("/api/predict", files={"file": ("seven.png", SEVEN, "image/png")})
        assert response.json()["digit"] == 7


def test_serve_on_a_port_in_use_says_what_to_do(capsys: pytest.CaptureFixture) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"handwritten: error: --host 127.0.0.1 --port {port}: cannot listen")
    assert "choose another --port" in error


@pytest.mark.parametrize("option", ["--grace", "--drain"])
@pytest.mark.parametrize("text", ["-1", "soon", "nan"])
def test_serve_refuses_a_time_that_is_not_seconds(
    option: str, text: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit):
        main(["serve", option, text])
    error = capsys.readouterr().err
    assert f"argument {option}: must be a number of seconds, 0 or more, not {text}" in error


def test_serve_with_a_missing_model_fails_before_listening(capsys: pytest.CaptureFixture) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    assert main(["serve", "--port", str(port), "--model", "nowhere.keras"]) == 1
    assert "nowhere.keras: no such model file" in capsys.readouterr().err


def row_of_digits(*strokes: list[tuple[float, float]]) -> bytes:
    """One image with each stroke drawn in its own 112-px cell, left to right."""
    row = Image.new("L", (112 * len(strokes) + 40, 152), 255)
    for index, stroke in enumerate(strokes):
        row.paste(draw(stroke=stroke), (20 + 112 * index, 20))
    return encode(row)


def test_a_row_of_digits_is_read_left_to_right(client: TestClient) -> None:
    one, seven = [(0.5, 0.05), (0.5, 0.95)], [(0.2, 0.15), (0.8, 0.15), (0.45, 0.9)]
    body = row_of_digits(one, seven, seven)
    response = client.post("/api/predict-number", files={"file": ("row.png", body, "image/png")})
    assert response.status_code == 200
    answer = response.json()
    assert answer["number"] == "177"
    assert [digit["digit"] for digit in answer["digits"]] == [1, 7, 7]
    assert all(len(digit["probabilities"]) == 10 for digit in answer["digits"])
    assert (answer["width"], answer["height"]) == (112 * 3 + 40, 152)
    for index, digit in enumerate(answer["digits"]):
        left, top, right, bottom = digit["box"]
        assert 20 + 112 * index <= left < right <= 20 + 112 * (index + 1)
        assert 20 <= top < bottom <= 132


@pytest.mark.parametrize(
    ("body", "status", "words"), [(BLANK, 422, "no digit found"), (b"junk", 400, "request body")]
)
def test_predict_number_rejects_bad_input(
    client: TestClient, body: bytes, status: int, words: str
) -> None:
    response = client.post(
        "/api/predict-number", content=body, headers={"Content-Type": "image/png"}
    )
    assert response.status_code == status
    assert words in response.json()["detail"]


@pytest.mark.parametrize(
    ("protocol", "nodelay"), [(H11Protocol, False), (NoDelayH11Protocol, True)]
)
def test_connections_turn_nagle_off_when_workers_bind_the_socket(protocol, nodelay) -> None:
    """uvicorn's workers share a socket bound with proto 0, where asyncio leaves Nagle on."""

    async def accepted_nodelay() -> bool:
        listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # proto 0, as uvicorn's
        listening.bind(("127.0.0.1", 0))
        config = uvicorn.Config(create_app(model="seed"), http=protocol)
        config.load()
        state = uvicorn.server.ServerState()
        server = await asyncio.get_running_loop().create_server(
            lambda: protocol(config=config, server_state=state, app_state={}), sock=listening
        )
        _, writer = await asyncio.open_connection(*listening.getsockname())
        while not state.connections:
            await asyncio.sleep(0.01)
        (connection,) = state.connections
        option = connection.transport.get_extra_info("socket").getsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY
        )
        writer.close()
        server.close()
        return bool(option)

    assert asyncio.run(accepted_nodelay()) is nodelay


@pytest.mark.parametrize("path", ["/", "/api/health", "/api/health/ready", "/api/config"])
def test_head_is_answered_where_get_is_as_monitors_ask(client: TestClient, path: str) -> None:
    head, get = client.head(path), client.get(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


def test_a_forged_line_in_the_path_stays_in_its_own_log_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """CWE-117: the path was logged percent-decoded, so %0d%0a began a new, forged line."""
    forged = "/x%0d%0aINFO:     127.0.0.1:1 - %22GET /admin%22 200"
    with caplog.at_level(logging.INFO, logger="handwritten.serve"):
        assert client.get(forged).status_code == 404
    (line,) = [record.getMessage() for record in caplog.records]
    assert "\r" not in line
    assert "\n" not in line
    assert (
        '"GET /x%0D%0AINFO%3A%20%20%20%20%20127.0.0.1%3A1%20-%20%22GET%20/admin%22%20200"' in line
    )


UNREADABLE = {"junk": b"\x00not an image at all", "cut-png": TRUNCATED, "png-junk": SEVEN[:40]}


@pytest.mark.parametrize("endpoint", ["/api/predict", "/api/predict-number"])
@pytest.mark.parametrize("kind", UNREADABLE)
def test_an_unreadable_upload_is_told_what_is_wrong_without_internals(
    client: TestClient, endpoint: str, kind: str
) -> None:
    """The message quoted `UnidentifiedImageError: cannot identify image file <_io.BytesIO
    object at 0x7f...>`: a class name and an object's repr, which mean nothing to a user."""
    upload = {"file": ("scan.png", UNREADABLE[kind], "image/png")}
    response = client.post(endpoint, files=upload)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("scan.png: not a readable image (")
    assert "save it as PNG or JPEG" in detail
    for internal in ("Error", "<", "0x", "BytesIO", "object at"):
        assert internal not in detail


def test_serve_refuses_a_read_timeout_of_zero(capsys: pytest.CaptureFixture) -> None:
    assert main(["serve", "--read-timeout", "0"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("handwritten: error: --read-timeout 0: every connection would be")


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("multipart/form-data", SEVEN, "(Missing boundary in multipart)"),
        (
            "multipart/form-data; boundary=b",
            b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n",
            '(The Content-Disposition header field "name" must be provided)',
        ),
    ],
)
def test_a_form_that_cannot_be_parsed_is_told_what_to_send(
    client: TestClient, content_type: str, body: bytes, reason: str
) -> None:
    """Found by test_api_properties.py: Starlette answered only `Missing boundary in
    multipart.`, naming no field and no fix."""
    response = client.post("/api/predict", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith(f"the request body is not a readable multipart form {reason}; ")
    assert "multipart field `file`" in detail


def cancelled_midway(answer_begun: bool) -> tuple[list[dict], BaseException | None]:
    """Run an app that never finishes under AnswerCancelled, cancel it as uvicorn does when
    --grace runs out, and return what it sent and what escaped it."""
    sent: list[dict] = []

    async def stuck(scope, receive, send) -> None:
        if answer_begun:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.Event().wait()

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def run() -> BaseException | None:
        scope = {"type": "http", "method": "POST", "path": "/api/predict", "headers": []}
        task = asyncio.create_task(AnswerCancelled(stuck)(scope, receive, send))
        await asyncio.sleep(0)  # The task runs until it waits on its event: nothing yields before.
        task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        try:
            await task
        except BaseException as exc:
            return exc
        return None

    return sent, asyncio.run(run())


def test_a_request_cancelled_by_shutdown_is_answered_503_not_raised() -> None:
    sent, escaped = cancelled_midway(answer_begun=False)
    assert escaped is None
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 503
    assert b"the server shut down before this request was answered" in sent[1]["body"]


def test_a_request_cancelled_after_its_answer_began_just_ends() -> None:
    """uvicorn then closes the connection: the client sees an answer cut short, and the log
    has one line about it, not a traceback."""
    sent, escaped = cancelled_midway(answer_begun=True)
    assert escaped is None
    assert [message["type"] for message in sent] == ["http.response.start"]
