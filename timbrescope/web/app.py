"""The HTTP API (``/api/v1``) and the page (``/``) over one ``Recognizer``: ``create_app(ServeSettings)``.

Every route is a thin wrapper: analysis is ``jobs.JobQueue`` over ``inference.Recognizer``, library
paths are ``library.Library``, CSV is ``timeline.result_csv``. Errors are JSON ``{"error": "one line"}``
with the CLI's messages. An upload is copied to a temp file under a random name (its own name is only
shown), checked to be audio by opening it with the decoder (415 if not), then queued.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import tempfile
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from timbrescope import __version__
from timbrescope.audio import info
from timbrescope.errors import AudioError, ParameterError, TimbrescopeError
from timbrescope.inference import Recognizer
from timbrescope.taxonomy import TAXONOMY_VERSION, source_of, target_family
from timbrescope.timeline import result_csv
from timbrescope.web.jobs import Job, JobQueue, QueueFull
from timbrescope.web.library import Library, PathMissing, PathRefused

API = "/api/v1"
STATIC = Path(str(resources.files("timbrescope") / "web" / "static"))


@dataclass(frozen=True)
class ServeSettings:
    """What ``timbrescope serve`` sets. ``wait_seconds``: how long ``POST /identify`` holds the request
    before it answers 202 with a job to poll; ``timeout_seconds``: the most one analysis may take;
    ``queue``: jobs that may wait for a worker before the server answers 503."""

    checkpoint: str | None = None
    library: str | None = None
    max_upload_mb: float = 200.0
    workers: int = 1
    queue: int = 64
    cors: tuple[str, ...] = ()
    wait_seconds: float = 30.0
    timeout_seconds: float = 600.0


class UploadLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 (by its Content-Length
    before the app sees it, else as soon as the bytes received pass it) and never reaches the app whole;
    the rest of the body is read and dropped (``_drain``) so that the client receives the answer."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and not declared.isdigit():
            return await _send_error(send, 400, "bad Content-Length")
        if declared is not None and int(declared) > self.limit:
            await _drain(receive)
            return await _send_error(send, 413, self._message())
        received, over, started, ended = 0, False, False, False

        async def limited():
            nonlocal received, over, ended
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            ended = message["type"] != "http.request" or not message.get("more_body")
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                over = received > self.limit
                if over:
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message) -> None:
            nonlocal started
            if not over:
                started = True
                await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if not over:
                raise
        if over and not started:
            if not ended:
                await _drain(receive)
            await _send_error(send, 413, self._message())

    def _message(self) -> str:
        return f"the upload is larger than the server's limit of {self.limit / 2**20:g} MB"


DRAIN_BYTES = 64 << 20  # what a refused upload may still send before the connection closes


async def _drain(receive) -> None:
    """Read and drop the rest of a refused request body (up to ``DRAIN_BYTES``): a connection closed
    with unread bytes is reset, and the client may lose the 413 sent before it."""
    left = DRAIN_BYTES
    while left > 0:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return
        left -= len(message.get("body", b""))


async def _send_error(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: ServeSettings, recognizer: Recognizer | None = None):
    """The FastAPI application; ``recognizer`` defaults to one built from ``settings.checkpoint``."""
    recognizer = recognizer or Recognizer(settings.checkpoint)
    library = Library(settings.library) if settings.library else None
    uploads = Path(tempfile.mkdtemp(prefix="timbrescope-uploads-"))
    jobs = JobQueue(recognizer, settings.workers, settings.queue, settings.timeout_seconds)

    @asynccontextmanager
    async def lifespan(app):
        yield
        jobs.close()
        shutil.rmtree(uploads, ignore_errors=True)

    app = FastAPI(title="timbrescope", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Which instruments are playing in this recording, and when?")
    app.state.jobs, app.state.uploads = jobs, uploads
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")
    if settings.cors:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors), allow_methods=["GET", "POST"])
    app.add_middleware(UploadLimit, limit=int(settings.max_upload_mb * 2**20))

    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status, headers=headers)

    @app.exception_handler(TimbrescopeError)
    async def refused(request: Request, exc: TimbrescopeError) -> JSONResponse:
        if isinstance(exc, QueueFull):
            return error(503, str(exc), {"Retry-After": str(exc.retry_after)})
        status = {PathRefused: 403, PathMissing: 404, AudioError: 415}.get(type(exc), 422)
        return error(status, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        return error(422, f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")

    async def answer(job: Job, wait: bool) -> Response:
        """The result (200) when the job ends within ``wait_seconds``, else the job to poll (202)."""
        if wait:
            loop = asyncio.get_running_loop()
            ended = loop.create_future()

            def wake() -> None:  # on a worker thread; the request may be gone by then
                try:
                    loop.call_soon_threadsafe(lambda: ended.done() or ended.set_result(None))
                except RuntimeError:
                    pass

            job.on_done(wake)
            try:
                await asyncio.wait_for(ended, settings.wait_seconds)
            except TimeoutError:
                pass
        if job.status == "done":
            return JSONResponse(job.result)
        if job.status == "failed":
            return error(422, job.error)
        return JSONResponse(job.public(), 202, headers={"Location": f"{API}/jobs/{job.id}"})

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="timbrescope API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")

    @app.get(f"{API}/health")
    async def health() -> dict:
        """The server is up: its model, workers and the jobs waiting for them."""
        return {"status": "ok", "version": __version__, "workers": settings.workers, "waiting": jobs.waiting,
                "queue": settings.queue, "library": library is not None}

    @app.get(f"{API}/model")
    async def model() -> dict:
        """The model's name, labels, their families and sources, thresholds and decision rule."""
        return {"name": Path(recognizer.meta["path"]).name, "version": __version__,
                "architecture": recognizer.meta.get("model"), "taxonomy_version": TAXONOMY_VERSION,
                "labels": recognizer.labels, "families": {label: target_family(label) for label in recognizer.labels},
                "sources": {label: source_of(label) for label in recognizer.labels},
                "thresholds": recognizer.thresholds, "frame_thresholds": recognizer.frame_thresholds,
                "hop_seconds": recognizer.hop_seconds, "decision": vars(recognizer.rule)}

    upload_body = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}}}}}}}

    @app.post(f"{API}/identify", openapi_extra=upload_body, status_code=200,
              responses={202: {"description": "still running: poll the job"}, 413: {}, 415: {}, 503: {}})
    async def identify(request: Request, wait: bool = True) -> Response:
        """Identify an uploaded recording (multipart field ``file``): the ``identify --json`` object.
        A recording still running after the server's wait answers 202 with a job id to poll."""
        form = await request.form(max_files=1, max_fields=4)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return error(422, "send the recording as the multipart field 'file'")
        name = _display_name(upload.filename)
        handle, temp = tempfile.mkstemp(dir=uploads, suffix=".upload")
        try:
            with open(handle, "wb") as out:
                await run_in_threadpool(shutil.copyfileobj, upload.file, out, 1 << 20)
            await upload.close()
            expected = (await run_in_threadpool(info, temp)).duration
        except AudioError as exc:
            Path(temp).unlink(missing_ok=True)
            return error(415, f"{name}: not a recording we can decode ({str(exc).split(': ', 1)[-1]})")
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return await answer(jobs.submit(name, Path(temp), True, expected), wait)

    @app.get(f"{API}/jobs/{{job_id}}")
    async def job(job_id: str) -> dict:
        """A job's status and progress (0..1); its ``result`` once done, its ``error`` if failed."""
        return _job(job_id).public()

    @app.get(f"{API}/jobs/{{job_id}}/result.csv", response_class=Response)
    async def job_csv(job_id: str) -> Response:
        """A finished job's result as CSV: one row per instrument, then one per segment."""
        found = _job(job_id)
        if found.result is None:
            return error(409, f"job {job_id} is {found.status}, no result")
        stem = Path(found.name).stem or "result"
        return Response(result_csv(found.result), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{_ascii(stem)}.csv"'})

    def _job(job_id: str) -> Job:
        found = jobs.get(job_id)
        if found is None:
            raise HTTPException(404, f"no job {job_id}")
        return found

    def _library() -> Library:
        if library is None:
            raise HTTPException(404, "this server has no library (start it with --library DIR)")
        return library

    @app.get(f"{API}/library")
    async def browse(path: str = "", q: str | None = Query(None, max_length=200)) -> dict:
        """The folders and audio files in ``path`` of the library; with ``q``, the files anywhere whose
        path holds every word of ``q``."""
        if q:
            return await run_in_threadpool(_library().search, q)
        return await run_in_threadpool(_library().listing, path)

    @app.post(f"{API}/library/identify", status_code=200, responses={202: {}, 403: {}, 404: {}, 503: {}})
    async def identify_library(path: str, wait: bool = True) -> Response:
        """Identify one audio file of the library (``path`` relative to its root)."""
        target = _library().resolve(path, "file")
        expected = (await run_in_threadpool(info, target)).duration
        return await answer(jobs.submit(path, target, False, expected), wait)

    @app.get(f"{API}/library/audio")
    async def library_audio(path: str) -> FileResponse:
        """The audio file itself, for the page's player."""
        return FileResponse(_library().resolve(path, "file"))

    return app


def _display_name(filename: str | None) -> str:
    """An upload's name for display: its last path part, printable characters only, 200 at most."""
    name = (filename or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable())[:200]
    return name or "upload"


def _ascii(name: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)[:100] or "result"


def serve(settings: ServeSettings, host: str, port: int, started: Callable[[str], None]) -> None:
    """Run the app on uvicorn at ``host:port`` (0: a free port) until Ctrl-C; ``started(url)`` once the
    socket is bound. A port that cannot be bound is a ``ParameterError``, before any model is loaded."""
    import uvicorn

    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except (OSError, OverflowError) as exc:
        listener.close()
        raise ParameterError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    app = create_app(settings)
    started(f"http://{host}:{listener.getsockname()[1]}")
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_keep_alive=5)).run(sockets=[listener])
    except KeyboardInterrupt:  # Ctrl-C is how a server stops: uvicorn has shut down cleanly, then re-raised it
        pass
