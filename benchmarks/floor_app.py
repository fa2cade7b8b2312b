"""The floor under the server's latency: the same HTTP stack answering without doing any work.

FastAPI under uvicorn, started the way `handwritten serve` starts it (with its HTTP protocol,
which turns Nagle's algorithm off), reading the request body
and answering a fixed digit: no image decoding, no preprocessing, no model. Loaded by the
same clients as the real server, it shows how much of a request's time the HTTP stack and the
load client take on this machine before the project does anything.

    .venv/bin/python -m uvicorn floor_app:app --app-dir benchmarks --port 8001 \
        --http handwritten.serve:NoDelayH11Protocol
"""

from __future__ import annotations

from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/api/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/predict")
async def predict(request: Request) -> dict[str, int]:
    await request.body()
    return {"digit": 0}
