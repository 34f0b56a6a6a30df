"""The operations page as a Starlette app: pages, a live event stream, controls, ``/metrics``.

Reads come from the store (:class:`~orchestrator.ui.views.Reads`); every
control action goes through the :class:`~orchestrator.client.Client` - the
one control plane the CLI uses too - never into the store directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.client import Client
from orchestrator.errors import LoopEndedError, UnknownJobError, UnknownLoopError
from orchestrator.states import LoopStatus
from orchestrator.ui import auth
from orchestrator.ui.format import FILTERS
from orchestrator.ui.graph import render_svg
from orchestrator.ui.stream import job_events, resume_from
from orchestrator.ui.views import Reads

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Sources:
    """What the page serves from.

    Attributes:
        client: The control plane (pause, resume, stop, cancel).
        reads: The store's reads.
        metrics: What ``/metrics`` serves (``None``: not served).
    """

    client: Client
    reads: Reads
    metrics: CollectorRegistry | None = None


def create_app(
    sources: Sources,
    token: str,
    guard_reads: bool,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The app; ``token`` guards every control action, and every read with ``guard_reads``."""
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters.update(FILTERS)
    reads = sources.reads

    def jobs(request: Request) -> Response:
        return templates.TemplateResponse(
            request, "jobs.html", {"jobs": reads.jobs(), "now": clock()}
        )

    def job_context(request: Request) -> dict[str, Any]:
        job_id = request.path_params["job"]
        view = reads.job(job_id, clock(), request.query_params.get("node") or None)
        if view is None:
            raise _NotFound(f"no job {job_id!r} in the store")
        svg = render_svg(view.plan, view.health) if view.plan is not None else ""
        return {"view": view, "svg": svg, "now": clock()}

    def job(request: Request) -> Response:
        return templates.TemplateResponse(request, "job.html", job_context(request))

    def panels(request: Request) -> Response:
        return templates.TemplateResponse(request, "panels.html", job_context(request))

    def events(request: Request) -> Response:
        job_id = request.path_params["job"]
        if reads.store.get_job(job_id) is None:
            raise _NotFound(f"no job {job_id!r} in the store")
        after = resume_from(request.headers, request.query_params)
        return StreamingResponse(
            job_events(reads.store, job_id, after),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def steer_loop(request: Request) -> Response:
        job_id, loop = request.path_params["job"], request.path_params["loop"]
        action = _LOOP_ACTIONS.get(request.path_params["action"])
        if action is None:
            return _error(404, "actions on a loop: pause, resume, stop")
        action(sources.client, job_id, loop)
        return JSONResponse({"ok": True, "job": job_id, "loop": loop})

    def cancel(request: Request) -> Response:
        job_id = request.path_params["job"]
        sources.client.cancel(job_id)
        return JSONResponse({"ok": True, "job": job_id})

    def stop(request: Request) -> Response:
        job_id = request.path_params["job"]
        view = reads.job(job_id, clock(), request.query_params.get("node") or None)
        if view is None:
            raise _NotFound(f"no job {job_id!r} in the store")
        stopped = [
            row.name for row in view.loops if row.steerable and not LoopStatus(row.status).terminal
        ]
        for name in stopped:
            sources.client.stop_loop(job_id, name)
        return JSONResponse({"ok": True, "job": job_id, "stopped": stopped})

    def metrics(request: Request) -> Response:
        if sources.metrics is None:
            return _error(404, "no metrics here")
        return Response(generate_latest(sources.metrics), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/", lambda request: RedirectResponse("/jobs")),
        Route("/jobs", jobs),
        Route("/jobs/{job}", job),
        Route("/jobs/{job}/panels", panels),
        Route("/jobs/{job}/events", events),
        Route("/api/jobs/{job}/cancel", cancel, methods=["POST"]),
        Route("/api/jobs/{job}/stop", stop, methods=["POST"]),
        Route("/api/jobs/{job}/loops/{loop}/{action}", steer_loop, methods=["POST"]),
        Route("/metrics", metrics),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    handlers = {
        _NotFound: lambda request, exc: _error(404, str(exc)),
        UnknownJobError: lambda request, exc: _error(404, str(exc)),
        UnknownLoopError: lambda request, exc: _error(404, str(exc)),
        LoopEndedError: lambda request, exc: _error(409, str(exc)),
    }
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.add_middleware(TokenGuard, token=token, guard_reads=guard_reads)
    return app


class TokenGuard:
    """ASGI middleware that applies :func:`orchestrator.ui.auth.allowed`; a read
    that brought a right ``?token=`` gets it as a cookie for the links and the
    event stream that follow (a cookie never steers)."""

    def __init__(self, app: ASGIApp, token: str, guard_reads: bool) -> None:
        self.app = app
        self.token = token
        self.guard_reads = guard_reads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if not auth.allowed(
            request.method,
            request.url.path,
            request.headers,
            request.cookies,
            request.query_params,
            token=self.token,
            guard_reads=self.guard_reads,
        ):
            needs = "a control action" if request.method not in ("GET", "HEAD") else "reading"
            message = (
                f"{needs} needs the page's token in the X-Segue-Token header "
                "(or Authorization: Bearer); open the address `segue ui` printed"
            )
            await _error(401, message)(scope, receive, send)
            return
        fresh = request.query_params.get("token")
        if not auth.matches(fresh, self.token) or request.cookies.get(auth.COOKIE) == fresh:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{auth.COOKIE}={fresh}; Path=/; HttpOnly; SameSite=Strict"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


class _NotFound(Exception):
    pass


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


_LOOP_ACTIONS: dict[str, Callable[[Client, str, str], None]] = {
    "pause": Client.pause_loop,
    "resume": Client.resume_loop,
    "stop": Client.stop_loop,
}
