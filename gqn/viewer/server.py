"""The viewer's HTTP side: a FastAPI app over a :class:`ViewerSession`, served by uvicorn.

Routes (JSON unless said otherwise; images are ``data:image/png;base64`` URLs):

- ``GET /``: the page (``static/index.html``; its JS and CSS under ``/static``, nothing external).
- ``GET /api/info``: the model's name, ``consistent``, image size, number of scenes, source.
- ``GET /api/scenes/{i}``: scene i's views: image, yaw, pitch, distance; the distance range.
- ``POST /api/render``: ``{"scene": i, "context": [view, ...], "cameras": [{"yaw", "pitch",
  "distance"} | {"view": j}, ...], "seed": s}`` -> ``{"images": [...], "truth": [j | null, ...],
  "ms": render time}``; one ``generate`` call for all cameras.

Bad requests get ``{"error": "..."}``: 404 for a scene out of range, 422 for a bad pose, view,
context or body; the server keeps running. Bound to a loopback address, the app also refuses
requests whose Host header is not a loopback name (DNS rebinding).
"""

from __future__ import annotations

import base64
import io
import socket
import time
from pathlib import Path

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from gqn.viewer.session import OrbitCamera, SceneNotFound, ViewerSession
from gqn.viz.grids import to_uint8

STATIC = Path(__file__).parent / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_CAMERAS = 32


class CameraIn(BaseModel):
    """An orbit camera (radians, world units)."""

    yaw: float
    pitch: float
    distance: float


class ViewIn(BaseModel):
    """A camera exactly at one of the scene's views."""

    view: int


class RenderRequest(BaseModel):
    scene: int
    context: list[int] = Field(default_factory=list)
    cameras: list[CameraIn | ViewIn] = Field(min_length=1, max_length=MAX_CAMERAS)
    seed: int = Field(0, ge=0, lt=2**63)


def png_data_url(image: torch.Tensor) -> str:
    """A (3, s, s) image in [0, 1] as a PNG data URL (lossless: the page shows the model's
    uint8 pixels exactly)."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _validation_message(e: RequestValidationError) -> str:
    parts = []
    for err in e.errors()[:4]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "bad request: " + "; ".join(parts)


def create_app(
    session: ViewerSession, source: str, allowed_hosts: tuple[str, ...] | None = None
) -> FastAPI:
    """The app serving ``session``; ``source`` names the scenes in the page; ``allowed_hosts``:
    the Host header names it answers (any when None)."""
    app = FastAPI(title="gqn view", docs_url=None, redoc_url=None, openapi_url=None)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    @app.exception_handler(SceneNotFound)
    async def _not_found(request: Request, e: SceneNotFound) -> JSONResponse:
        return _error(404, str(e))

    @app.exception_handler(ValueError)
    async def _bad_value(request: Request, e: ValueError) -> JSONResponse:
        return _error(422, str(e))

    @app.exception_handler(RequestValidationError)
    async def _bad_body(request: Request, e: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(e))

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/info")
    def info() -> dict:
        model = session.model
        return {
            "model": model.name,
            "consistent": model.consistent,
            "image_size": model.image_size,
            "num_scenes": session.num_scenes,
            "source": source,
        }

    @app.get("/api/scenes/{index}")
    def scene(index: int) -> dict:
        s = session.scene(index)
        views = [
            {"image": png_data_url(image), "yaw": c.yaw, "pitch": c.pitch, "distance": c.distance}
            for image, c in zip(s.images, s.cameras(), strict=True)
        ]
        return {"index": index, "views": views, "distance_range": list(s.distance_range)}

    @app.post("/api/render")
    def render(request: RenderRequest) -> dict:
        cameras = [
            c.view if isinstance(c, ViewIn) else OrbitCamera(c.yaw, c.pitch, c.distance)
            for c in request.cameras
        ]
        start = time.perf_counter()
        out = session.render(request.scene, tuple(request.context), cameras, request.seed)
        ms = 1000 * (time.perf_counter() - start)
        return {"images": [png_data_url(x) for x in out.images], "truth": out.truth, "ms": ms}

    return app


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (0: any free port), before the app starts, so that
    a port in use is one clear OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port} ({e.strerror or e}): the port is in use or the "
            "address is not this machine's; pick another with --port / --host"
        ) from e
    return sock


def make_server(app: FastAPI) -> uvicorn.Server:
    """A uvicorn server for ``app``; run it with ``server.run(sockets=[bind(host, port)])``
    (``server.should_exit = True`` stops it)."""
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
