"""The shape of every error the web service answers, below the modules that answer them.

`serve` (the API and the page) and `collect` (corrections) both answer errors as one JSON
message, `{"detail": "..."}`, naming the field or file and what to send instead. Both import
the model and the handlers from here, so neither has to import the other for them.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

FIELD_HINTS = {
    "file": "send the image as a file in the multipart field `file`",
    "digit": "send the right digit, 0 to 9, as the plain form field `digit` (text, not a file)",
}
"""What to send instead, for each form field a client can get wrong."""


class ErrorOut(BaseModel):
    """Every error: one message naming the problem and what to send instead."""

    detail: str


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own validation errors, in the one-message shape every other error has, each
    with the hint for its own field."""
    problems = "; ".join(_problem(error) for error in exc.errors())
    return JSONResponse({"detail": f"{problems}."}, status_code=422)


def _problem(error: dict) -> str:
    field = str(error["loc"][-1]) if error.get("loc") else "request"
    hint = FIELD_HINTS.get(field, FIELD_HINTS["file"])
    return f"{field}: {error['msg']}; {hint}"
