"""The API in-process under Hypothesis: made-up methods and non-ASCII text in every field.

The schema-driven fuzzing (test_faults_server.py) sends what the OpenAPI schema allows, and
so missed what issue #25 found: a superscript digit, made-up methods, control characters in
the path, an upload's field sent as a file. Here every part of a request is drawn at random:
the method (known or made up), the path, the query, the headers, the content type, the
multipart fields (their names, file names and values, as text or as files) and the body.
Whatever is sent, the answers must hold the service's promises:

- no 5xx;
- an error is one JSON message with no internals (no class name, no object's repr) that says
  what to send instead;
- one log line per request, with no line break in it;
- the metrics' method label keeps to a bounded set;
- a correction is kept only under an ASCII digit 0-9, and under that digit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

import numpy as np
import pytest
from drawings import draw, encode
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from handwritten.metrics import METHODS, OTHER_METHOD
from handwritten.serve import create_app

SEVEN = encode(draw())
BLANK = encode(Image.new("L", (64, 64), 255))
INTERNALS = re.compile(r"\b\w+(Error|Exception)\b|object at 0x|Traceback|<class '|<[\w.]+ object")
"""What would show the program's insides: a class name, an object's repr, a traceback."""
FIXES = ("send", "save it", "start it", "draw", "tune", "give")
"""Every error message says what to do instead, in one of these words."""
HTTP_DEFAULTS = {404, 405}
"""Starlette's own "Not Found" and "Method Not Allowed": the path or method is the answer."""


class AlwaysThree:
    """A classifier that reads every drawing as 3: quick, so the search covers more."""

    path = None
    card: ClassVar = {"name": "always-three"}

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return np.tile(np.eye(10, dtype=np.float32)[3], (len(images), 1))


class Lines(logging.Handler):
    """The request log's lines, as written."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Lines, Path]]:
    folder = tmp_path_factory.mktemp("properties") / "collected"
    lines = Lines()
    logger = logging.getLogger("handwritten.serve")
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    try:
        app = create_app(AlwaysThree(), collect=folder)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, lines, folder
    finally:
        logger.removeHandler(lines)


TOKEN = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_!~", min_size=1)
ANY_TEXT = st.text(max_size=30)
NAME = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30)
"""A field or file name: any text but control characters, which no client can send there
(the raw requests of test_hostile_clients.py send them, to a real server)."""
HEADER_VALUE = NAME
ROUTES = [
    ("POST", "/api/predict"),
    ("POST", "/api/predict-number"),
    ("POST", "/api/corrections"),
    ("GET", "/api/health"),
    ("GET", "/api/health/ready"),
    ("GET", "/api/config"),
    ("GET", "/"),
    ("GET", "/static/app.js"),
]
METHOD = st.one_of(st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]), TOKEN)
PATH = ANY_TEXT.map(lambda text: "/" + quote(text.encode("utf-8", "surrogatepass"), safe="/"))
"""Any text, percent-encoded as a client must: the server decodes it, control characters
(a forged log line) and all."""
NOT_IMAGES = st.one_of(
    st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8\xff"]),
    st.binary(max_size=200),
    st.tuples(st.integers(0, len(SEVEN) - 1), st.binary(max_size=20)).map(
        lambda cut: SEVEN[: cut[0]] + cut[1]
    ),
)
"""Bytes that are no image, or an image cut short and followed by junk."""
CONTENT = st.one_of(st.sampled_from([SEVEN, BLANK]), NOT_IMAGES)
CONTENT_TYPE = st.one_of(
    st.sampled_from(
        [
            "image/png",
            "image/jpeg",
            "application/octet-stream",
            "text/plain",
            "multipart/form-data",
            "multipart/form-data; boundary=b",
            "application/x-www-form-urlencoded",
        ]
    ),
    HEADER_VALUE,
)
DIGIT_LIKE = st.characters(categories=("Nd", "No", "Nl"))
"""Characters of every script that are digits or numbers to Unicode (², ٣, full-width 1,
Roman numerals): what `str.isdigit` and `int` may take but the API must not."""
FIELD_VALUE = st.one_of(
    DIGIT_LIKE,
    st.text(DIGIT_LIKE, max_size=3),
    st.integers(-20, 20).map(str),
    ANY_TEXT,
)


def usually(strategy: st.SearchStrategy, otherwise: st.SearchStrategy) -> st.SearchStrategy:
    """`strategy` three times in four, `otherwise` the fourth: a search that mostly sends
    what the API expects, so it reaches the code behind each check, yet tries the rest."""
    return st.integers(0, 3).flatmap(lambda roll: otherwise if roll == 0 else strategy)


@st.composite
def multipart(draw_from: st.DrawFn) -> dict:
    """Form fields and files, each perhaps missing, misnamed, or of the wrong kind."""
    files: list[tuple[str, tuple]] = []
    data: dict[str, str] = {}
    if draw_from(usually(st.just(True), st.just(False))):
        name = draw_from(usually(st.just("file"), NAME))
        files.append((name, (draw_from(NAME), draw_from(CONTENT), draw_from(CONTENT_TYPE))))
    if draw_from(usually(st.just(True), st.just(False))):
        value = draw_from(FIELD_VALUE)
        if draw_from(usually(st.just(True), st.just(False))):
            data["digit"] = value
        else:
            files.append(("digit", (draw_from(NAME), value.encode(), "text/plain")))
    for name, value in draw_from(st.dictionaries(NAME, FIELD_VALUE, max_size=2)).items():
        data.setdefault(name, value)
    if not files:
        files.append(("extra", ("x.txt", b"x", "text/plain")))  # Keep it multipart.
    return {"files": files, "data": data}


@st.composite
def requests(draw_from: st.DrawFn) -> dict:
    """A request to one of the routes, with its method and path usually right, and every
    other part drawn at random."""
    method, path = draw_from(st.sampled_from(ROUTES))
    headers = draw_from(st.dictionaries(TOKEN, HEADER_VALUE, max_size=3))
    request = {
        "method": draw_from(usually(st.just(method), METHOD)),
        "url": draw_from(usually(st.just(path), PATH)),
        "params": draw_from(st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=2)),
        "headers": {name: value.encode() for name, value in headers.items()},
    }
    if draw_from(st.booleans()):
        request.update(draw_from(multipart()))
    else:
        request["content"] = draw_from(CONTENT)
        request["headers"]["Content-Type"] = draw_from(CONTENT_TYPE).encode()
    return request


def without_echoes(detail: str, request: dict) -> str:
    """The message without what the client sent (a content type, a file name, a field),
    which it may quote back and which may look like anything."""
    sent = [value.decode("utf-8", "replace") for value in request["headers"].values()]
    sent += [str(value) for value in request.get("data", {}).values()]
    sent += [str(part) for _, upload in request.get("files", []) for part in upload[:1]]
    for text in sorted(filter(None, sent), key=len, reverse=True):
        detail = detail.replace(text, "").replace(repr(text), "")
    return detail


def digits_sent(request: dict) -> list[str]:
    """The `digit` field's values as sent: a form field, or a part with no file name, which
    is a form field too."""
    sent = [request["data"]["digit"]] if "digit" in request.get("data", {}) else []
    for name, (filename, content, _) in request.get("files", []):
        if name == "digit" and not filename:
            sent.append(content.decode("utf-8", "replace"))
    return sent


def method_labels(client: TestClient) -> set[str]:
    text = client.get("/metrics").text
    return {
        sample.labels["method"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if "method" in sample.labels
    }


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(request=requests())
def test_whatever_is_sent_the_service_keeps_its_promises(served, request: dict) -> None:
    client, lines, folder = served
    before = len(lines.lines)
    response = client.request(**request)

    assert response.status_code < 500, response.text
    (line,) = lines.lines[before:]
    assert "\n" not in line
    assert "\r" not in line
    assert method_labels(client) <= METHODS | {OTHER_METHOD}
    if response.status_code >= 400 and request["method"] != "HEAD":
        detail = response.json()["detail"]
        assert isinstance(detail, str)
        assert not INTERNALS.search(without_echoes(detail, request)), detail
        if response.status_code not in HTTP_DEFAULTS:
            assert any(fix in detail for fix in FIXES), detail
    if response.status_code == 201:
        digit = str(response.json()["digit"])
        assert digit in {value.strip() for value in digits_sent(request)}
        assert (folder / response.json()["drawing"]).parent == folder / digit


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(digit=FIELD_VALUE)
def test_a_correction_is_kept_only_under_an_ascii_digit(served, digit: str) -> None:
    """Any text as the `digit` field, digits of every script most of all: kept (201) under
    that digit exactly when it is one of 0-9, else refused naming the field."""
    client = served[0]
    response = client.post(
        "/api/corrections", files={"file": ("d.png", SEVEN, "image/png")}, data={"digit": digit}
    )
    if digit.strip() in list("0123456789"):
        assert response.status_code == 201, response.text
        assert response.json()["digit"] == int(digit)
    else:
        assert response.status_code == 422, response.text
        assert response.json()["detail"].startswith("field `digit`: ")
