"""The shape of every error the web service answers, below the modules that answer them.

`serve` (the API and the page) and `collect` (corrections) both answer errors as one JSON
message, `{"detail": "..."}`, naming the field or file and what to send instead. Both import
the model and the handlers from here, so neither has to import the other for them.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

FIELD_HINTS = {
    "file": "send the image as a file in the multipart field `file`",
    "digit": "send the right digit, 0 to 9, as the plain form field `digit` (text, not a file)",
}
"""What to send instead, for each form field a client can get wrong."""
WRONG_KIND = {"file": "sent as text, not as a file", "digit": "sent as a file, not as text"}
"""The only way each form field can fail FastAPI's validation: both are optional."""
UNPARSED_BODY = "There was an error parsing the body"
"""FastAPI's whole message when a form cannot be parsed: it names neither problem nor fix."""


class ErrorOut(BaseModel):
    """Every error: one message naming the problem and what to send instead."""

    detail: str


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own validation errors, in the one-message shape every other error has, each
    with the hint for its own field."""
    problems = "; ".join(_problem(error) for error in exc.errors())
    return JSONResponse({"detail": f"{problems}."}, status_code=422)


def _problem(error: dict) -> str:
    """One field's problem in plain words: pydantic's own message for a text field sent
    where a file belongs reads `Expected UploadFile, received: <class 'str'>`."""
    field = str(error["loc"][-1]) if error.get("loc") else "request"
    hint = FIELD_HINTS.get(field, FIELD_HINTS["file"])
    return f"{field}: {WRONG_KIND.get(field, error['msg'])}; {hint}"


async def http_error(request: Request, exc: HTTPException) -> Response:
    """FastAPI's handler for HTTPException, but a form that cannot be parsed (a multipart
    body without its boundary, cut short, or malformed) is told what to send: Starlette
    and FastAPI answer only `Missing boundary in multipart.` or `There was an error parsing
    the body`."""
    if exc.status_code == 400 and _unparsed_form(exc):
        reason = "" if exc.detail == UNPARSED_BODY else f" ({str(exc.detail).rstrip('.')})"
        exc = HTTPException(
            400,
            f"the request body is not a readable multipart form{reason}; "
            f"{FIELD_HINTS['file']}, as a browser's FormData or `curl -F file=@digit.png` "
            "sends it, or send the image itself as the body with Content-Type image/png.",
        )
    return await http_exception_handler(request, exc)


def _unparsed_form(exc: BaseException) -> bool:
    """Whether this error was raised by parsing a form, not by the app's own checks."""
    if getattr(exc, "detail", None) == UNPARSED_BODY:
        return True
    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, MultiPartException) or (cause is not None and _unparsed_form(cause))
