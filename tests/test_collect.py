"""Corrections from the page (`serve --collect`): what lands where, the caps, and that nothing
is written without --collect. The app runs in-process around a classifier made here."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from drawings import draw, encode
from fastapi.testclient import TestClient
from PIL import Image

from handwritten import collect
from handwritten.cli import main
from handwritten.errors import HandwrittenError
from handwritten.predict import load_digit
from handwritten.serve import COLLECT_ENV, MODEL_ENV, app_from_env, create_app

SEVEN = encode(draw())
BLANK = encode(Image.new("L", (280, 280), 255))


class AlwaysThree:
    """A classifier that reads every drawing as 3: so a 7 is a wrong answer to correct."""

    path = None
    card: ClassVar = {"name": "always-three"}

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return np.tile(np.eye(10, dtype=np.float32)[3], (len(images), 1))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "collected"


@pytest.fixture
def client(folder: Path) -> Iterator[TestClient]:
    with TestClient(create_app(AlwaysThree(), collect=folder)) as client:
        yield client


def correct(client: TestClient, data: bytes = SEVEN, digit: str = "7", name: str = "d.png"):
    return client.post(
        "/api/corrections", files={"file": (name, data, "image/png")}, data={"digit": digit}
    )


def images_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.suffix in (".png", ".jpg"))


def test_the_page_learns_whether_corrections_are_kept(client: TestClient) -> None:
    assert client.get("/api/config").json() == {"collecting": True}
    with TestClient(create_app(AlwaysThree())) as plain:
        assert plain.get("/api/config").json() == {"collecting": False}


def test_a_correction_keeps_the_drawing_as_sent_and_as_the_model_saw_it(
    client: TestClient, folder: Path
) -> None:
    response = correct(client)

    assert response.status_code == 201
    answer = response.json()
    assert answer["digit"] == 7
    drawing, seen = folder / answer["drawing"], folder / answer["seen"]
    assert drawing.parent == folder / "7"
    assert seen.parent == folder / "7" / "seen"
    assert drawing.read_bytes() == SEVEN
    np.testing.assert_array_equal(np.asarray(Image.open(seen)), load_digit(SEVEN))
    assert images_under(folder) == sorted([drawing, seen])


def test_a_jpeg_is_kept_as_a_jpeg(client: TestClient, folder: Path) -> None:
    photo = encode(draw().convert("RGB"), "JPEG")
    answer = correct(client, photo, "4", "photo.jpg").json()
    assert answer["drawing"].endswith(".jpg")
    assert (folder / answer["drawing"]).read_bytes() == photo


def test_every_correction_gets_its_own_name(client: TestClient, folder: Path) -> None:
    names = {correct(client).json()["drawing"] for _ in range(5)}
    assert len(names) == 5
    assert len(list((folder / "7").glob("*.png"))) == 5
    assert len(list((folder / "7" / "seen").glob("*.png"))) == 5


def test_a_name_already_taken_is_never_overwritten(tmp_path: Path) -> None:
    taken = tmp_path / "7" / "mine.png"
    taken.parent.mkdir()
    taken.write_bytes(b"first")
    with pytest.raises(FileExistsError):
        collect._write_new(taken, b"second")
    assert taken.read_bytes() == b"first"
    assert list(taken.parent.iterdir()) == [taken]  # No temporary file left behind.


def test_a_file_over_the_cap_is_refused_and_nothing_written(
    client: TestClient, folder: Path
) -> None:
    client.app.state.collection = collect.Collection(folder, max_file_bytes=len(SEVEN) - 1)
    response = correct(client)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    client.app.state.collection = collect.Collection(folder, max_file_bytes=len(SEVEN))
    assert correct(client).status_code == 201


def test_a_full_folder_answers_507_and_writes_nothing(client: TestClient, folder: Path) -> None:
    correct(client)
    used = sum(path.stat().st_size for path in images_under(folder))
    client.app.state.collection = collect.Collection(folder, max_folder_bytes=used + 100)
    kept = images_under(folder)

    response = correct(client)

    assert response.status_code == 507
    assert "full" in response.json()["detail"]
    assert images_under(folder) == kept


def test_without_collect_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with TestClient(create_app(AlwaysThree())) as plain:
        response = correct(plain)
    assert response.status_code == 404
    assert "--collect" in response.json()["detail"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("files", "form", "status", "named"),
    [
        ({"file": ("d.png", SEVEN, "image/png")}, {}, 422, "digit"),
        ({"file": ("d.png", SEVEN, "image/png")}, {"digit": "12"}, 422, "digit"),
        ({"file": ("d.png", SEVEN, "image/png")}, {"digit": "x"}, 422, "digit"),
        (None, {"digit": "7"}, 422, "file"),
        ({"file": ("blank.png", BLANK, "image/png")}, {"digit": "7"}, 422, "blank.png"),
        ({"file": ("junk.png", b"not an image", "image/png")}, {"digit": "7"}, 400, "junk.png"),
        ({"file": ("empty.png", b"", "image/png")}, {"digit": "7"}, 400, "empty.png"),
    ],
)
def test_bad_corrections_say_what_to_send_and_write_nothing(
    client: TestClient, folder: Path, files, form, status, named
) -> None:
    response = client.post("/api/corrections", files=files, data=form)
    assert response.status_code == status
    assert named in response.json()["detail"]
    assert images_under(folder) == []


def test_tune_reads_the_collected_folder_as_it_is(client: TestClient, folder: Path) -> None:
    from handwritten.tune import read_drawings

    for digit in "717":
        assert correct(client, digit=digit).status_code == 201

    drawings = read_drawings(folder)

    assert sorted(drawings.labels.tolist()) == [1, 7, 7]
    assert drawings.skipped == []
    np.testing.assert_array_equal(drawings.images[0], load_digit(SEVEN))


def test_the_api_docs_describe_corrections(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/api/corrections"]["post"]
    assert {"201", "404", "413", "422", "507"} <= set(post["responses"])
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].split("/")[-1]
    assert {"file", "digit"} <= set(schema["components"]["schemas"][form]["properties"])
    assert "collecting" in schema["components"]["schemas"]["ConfigOut"]["properties"]


def test_workers_take_the_collect_folder_from_the_environment(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MODEL_ENV, "seed")
    monkeypatch.setenv(COLLECT_ENV, str(folder))
    with TestClient(app_from_env()) as client:
        assert client.get("/api/config").json() == {"collecting": True}
        assert correct(client).status_code == 201
    assert len(list((folder / "7").glob("*.png"))) == 1


def test_a_collect_folder_that_cannot_be_made_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    with pytest.raises(HandwrittenError, match="--collect"):
        collect.prepare_folder(a_file / "corrections")

    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = str(probe.getsockname()[1])
    assert main(["serve", "--port", port, "--model", "seed", "--collect", str(a_file)]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"handwritten: error: --collect {a_file}")
    assert "Traceback" not in error
