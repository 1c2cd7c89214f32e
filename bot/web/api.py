"""The HTTP API: `POST /api/v1/<command>` with the command's arguments as JSON, and `GET /openapi.json`.

A fifth surface of the one registry. A request passes the same steps as a chat message:

    body size -> API key (Authorization: Bearer) -> rate limit (the person's chat bucket)
    -> command and JSON arguments (the command's own model) -> scope (`act` for commands that act)
    -> pipeline: request id, admin check, validation -> in-flight limits -> job on the executor
       (local worker processes or the queue, heavy commands in their lane)
    -> the worker's answer (structured result or problem) handed back through the database

Every refusal is an RFC 9457 problem (`application/problem+json`) in one line; a bug answers 500
with the request id only, the traceback goes to the log under that id.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import sys
import time
from datetime import timedelta
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from bot.execution.jobs import ApiRoute, Job
from bot.execution.runner import WALL_MARGIN
from bot.pipeline import Admitted, Invocation
from bot.registry import Command
from bot.request import Identity, new_request_id
from bot.services import Services
from bot.web.openapi import API_PREFIX, api_fields, build_document
from bot.web.results import PROBLEM_JSON, http_answer, problem
from core.clock import utc_now
from core.errors import UserError
from storage import api_answers, api_keys

log = structlog.get_logger("coach.api")

#: Seconds between looks for a worker's answer: quick at first (most commands answer in well under a second).
POLL_FIRST, POLL_MAX = 0.02, 0.25
#: How long an answer no front took is kept, and how often the front drops older ones.
ANSWER_KEPT = timedelta(minutes=10)
PURGE_EVERY = 600.0
#: Seconds to wait when the caller's own requests (or their workspace's) are all still running.
BUSY_RETRY_AFTER = 2


def mount_api(app: web.Application, services: Services, api: HttpApi | None = None) -> None:
    """Add the HTTP API's routes to `app` (coach serve's one HTTP server)."""
    api = api or HttpApi(services)
    app.router.add_get("/openapi.json", api.openapi)
    app.router.add_route("*", API_PREFIX + "/{name:.*}", api.command)
    app.router.add_route("*", API_PREFIX, api.command)


class ApiSurface:
    """The HTTP API as a surface of `coach serve`: its routes on the HTTP server, and the answers' upkeep."""

    name = "api"

    def __init__(self, services: Services, host: str, port: int) -> None:
        self.services = services
        #: Where coach serve's HTTP server listens (the API needs one).
        self.http_listen = (host, port)
        self.api = HttpApi(services)

    def mount_http(self, app: web.Application) -> None:
        mount_api(app, self.services, self.api)

    async def run(self) -> None:
        """Build the OpenAPI document before anyone asks (a GPT editor's import waits for it), then drop answers
        whose caller went away."""
        try:
            await self.api.document()
        except Exception:  # /openapi.json tries again when asked, and says so if it fails
            log.warning("openapi_build_failed", exc_info=True)
        while True:
            await asyncio.sleep(PURGE_EVERY)
            try:
                async with self.services.db() as s, s.begin():
                    await api_answers.purge(s, utc_now() - ANSWER_KEPT)
            except Exception:  # the next round tries again; requests are not affected
                log.warning("api_answers_purge_failed", exc_info=True)

    async def close(self) -> None:
        return None


class HttpApi:
    """The request handlers, over one service's registry, pipeline and executor."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._document: dict[str, Any] | None = None
        self._document_lock = asyncio.Lock()

    # ------------------------------------------------------------------ /openapi.json

    async def openapi(self, request: web.Request) -> web.Response:
        try:
            doc = await self.document()
        except Exception:
            ref = new_request_id()
            log.exception("openapi_failed", request_id=ref)
            return _problem(500, f"something went wrong (ref {ref})", request_id=ref)
        server = self.services.settings.coach_public_url or f"{request.scheme}://{request.host}"
        return web.json_response({**doc, "servers": [{"url": server.rstrip("/")}]})

    async def document(self) -> dict[str, Any]:
        """The OpenAPI document, built once (its `servers` is set per request)."""
        async with self._document_lock:
            if self._document is None:
                if self.services.settings.coach_queue_url is not None:
                    # a queue front stays light: the result models' modules load in a child process
                    self._document = await _document_in_child()
                else:
                    self._document = await asyncio.to_thread(build_document, self.services.registry, server_url="/")
            return self._document

    # ------------------------------------------------------------------ /api/v1/<command>

    async def command(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._command(request)
        except Exception:  # a bug: the ref only for the caller, the traceback in the log
            ref = structlog.contextvars.get_contextvars().get("request_id") or new_request_id()
            log.exception("api_failed", request_id=ref)
            return _problem(500, f"something went wrong (ref {ref})", request_id=str(ref))

    async def _command(self, request: web.Request) -> web.StreamResponse:
        services = self.services
        settings = services.settings
        if request.method != "POST":
            return _problem(405, f"use POST with a JSON body; {request.method} is not served here", headers={"Allow": "POST"})
        limit = settings.coach_api_max_body
        if request.content_length is not None and request.content_length > limit:
            return _problem(413, f"the body is {request.content_length:,} bytes; the most accepted is {limit:,}")
        key = await self._authenticate(request)
        if isinstance(key, web.Response):
            return key
        ident = _identity(key)
        wait = await services.pipeline.limiter.acquire((ident.platform, ident.tenant, ident.user))
        if wait:
            seconds = max(1, math.ceil(wait))
            return _problem(
                429, services.pipeline.limiter.message(wait), headers={"Retry-After": str(seconds)}, retry_after=seconds
            )
        name = request.match_info.get("name", "").strip("/")
        cmd = services.registry.commands.get(" ".join(name.split("/")).lower()) if name else None
        if cmd is None:
            shown = name[:40] or "(none)"
            return _problem(404, f"no command {shown!r}; GET /openapi.json lists them (e.g. {API_PREFIX}/plan)")
        body = await _read_body(request, limit)
        if isinstance(body, web.Response):
            return body
        if cmd.acts is True and not key.can_act:
            return _scope_problem(cmd)
        if cmd.admin and not key.admin:
            return _problem(403, f"/{cmd.name} is for admins only; this key is not an admin key (coach apikey create --admin)")
        images = _images(request)
        if images is None:
            return _problem(400, "images must be true or false (?images=true adds the reply's chart images as base64 PNG)")
        args = _validate(cmd, body)
        if isinstance(args, web.Response):
            return args
        if cmd.acts_on(args) and not key.can_act:
            return _scope_problem(cmd)
        ctx = services.pipeline.request(services, ident)
        with structlog.contextvars.bound_contextvars(request_id=ctx.request_id, command=cmd.name, api_key=key.prefix):
            admitted = await services.pipeline.admit(ctx, Invocation.call(cmd.name, body), limit=False)
            if not isinstance(admitted, Admitted):
                status, answer = http_answer(admitted, cmd.name, ctx.request_id)
                return _answer(400 if status == 422 else status, answer, ctx.request_id)
            status, answer = await self._run(admitted, cmd, images)
            return _answer(status, answer, ctx.request_id)

    async def _authenticate(self, request: web.Request) -> api_keys.KeyInfo | web.Response:
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return _problem(
                401,
                "send your API key as `Authorization: Bearer coach_...` (the operator makes one with `coach apikey create`)",
                headers={"WWW-Authenticate": 'Bearer realm="coach"'},
            )
        async with self.services.db() as s, s.begin():
            key = await api_keys.authenticate(s, presented, utc_now())
        if key is None:
            return _problem(
                401,
                "the API key is wrong or revoked",
                headers={"WWW-Authenticate": 'Bearer realm="coach", error="invalid_token"'},
            )
        return key

    async def _run(self, admitted: Admitted, cmd: Command, images: bool = False) -> tuple[int, dict[str, Any]]:
        """Hand the request to the executor and wait for its answer (as the chat fronts do, but holding the connection)."""
        services, ctx = self.services, admitted.ctx
        executor = services.executor
        if executor is None:  # a process without an executor runs requests itself
            return http_answer(await services.pipeline.execute(admitted), cmd.name, ctx.request_id, images=images)
        busy = await executor.busy(ctx.identity)
        if busy is not None:
            return 429, problem(429, busy, request_id=ctx.request_id, retry_after=BUSY_RETRY_AFTER)
        key = f"api:{ctx.request_id}:{secrets.token_hex(4)}"
        job = Job.of(admitted, ApiRoute(command=cmd.name, request_id=ctx.request_id, images=images), key=key, now=utc_now())
        await executor.submit(job)
        budget = services.settings.coach_heavy_cpu_budget if job.lane == "heavy" else services.settings.coach_cpu_budget
        deadline = time.monotonic() + budget + WALL_MARGIN + 5.0  # past the executor's own limit, which answers first
        delay = POLL_FIRST
        while True:
            async with services.db() as s, s.begin():
                got = await api_answers.take(s, key)
            if got is not None:
                return got
            if time.monotonic() >= deadline:
                log.warning("api_answer_timeout", request_id=ctx.request_id)
                return 504, problem(504, f"/{cmd.name} did not answer in time (ref {ctx.request_id})", request_id=ctx.request_id)
            await asyncio.sleep(delay)
            delay = min(POLL_MAX, delay * 1.5)


def _images(request: web.Request) -> bool | None:
    """The `images` query flag: False when absent, None when it is neither true nor false."""
    raw = request.query.get("images", "false").strip().lower()
    return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(raw)


def _identity(key: api_keys.KeyInfo) -> Identity:
    """Whom a key acts for: its tenant and user (the console's tenant behaves as the console does)."""
    console = key.platform == "console"
    return Identity(
        platform=key.platform,
        tenant=key.tenant,
        user=key.user,
        channel="console" if console else None,
        display_name=key.user,
        is_admin=key.admin,
        dm=console,
    )


async def _read_body(request: web.Request, limit: int) -> dict[str, Any] | web.Response:
    """The JSON object of the body (empty: no arguments), or the 400/413 problem."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:  # read() gives what has arrived; stop at the end or one byte past the limit
        chunk = await request.content.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    raw = b"".join(chunks)
    if size > limit:
        return _problem(413, f"the body is larger than {limit:,} bytes, the most accepted")
    if not raw.strip():
        return {}
    # read as JSON whatever the Content-Type says (`curl -d` labels JSON as a form): what counts is what it holds
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return _problem(
            400, 'the body is not valid JSON; send one JSON object of the command\'s arguments, e.g. {"symbol": "TSLA"}'
        )
    if not isinstance(value, dict):
        return _problem(400, f"the body is a JSON {type(value).__name__}; send one JSON object of the command's arguments")
    return value


def _validate(cmd: Command, body: dict[str, Any]) -> BaseModel | web.Response:
    """The command's argument model from the body, or a 400 saying what was wrong and what is accepted."""
    fields = api_fields(cmd)
    accepted = _accepted(cmd, fields)
    unknown = sorted(k for k in body if k not in fields)
    if unknown:
        shown = ", ".join(repr(k[:30]) for k in unknown[:5])
        return _problem(400, f"unknown field{'s' if len(unknown) > 1 else ''} {shown} for {cmd.name}; accepted: {accepted}")
    try:
        return cmd.args.model_validate(body)
    except ValidationError as exc:
        return _problem(400, f"{_first_error(exc)}; accepted: {accepted}")
    except UserError as exc:  # the shared argument types (symbols, intervals) say what they accept themselves
        return _problem(400, exc.message)


def _accepted(cmd: Command, fields: list[str]) -> str:
    if not fields:
        return "an empty object {}"
    return ", ".join(f"{n} (required)" if cmd.args.model_fields[n].is_required() else n for n in fields)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    if err.get("type") == "missing":
        return f"missing field {loc!r}"
    msg = msg[0].lower() + msg[1:] if msg else msg
    return f"{loc}: {msg}" if loc else msg


def _scope_problem(cmd: Command) -> web.Response:
    return _problem(
        403,
        f"{cmd.name} changes something and this key has the read scope; use a key made with --scope act",
    )


def _problem(status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    request_id = extra.pop("request_id", None)
    body = problem(status, detail, request_id=request_id, **extra)
    return _answer(status, body, request_id, headers=headers)


def _answer(status: int, body: dict[str, Any], request_id: str | None, *, headers: dict[str, str] | None = None) -> web.Response:
    out = dict(headers or {})
    if request_id:
        out["X-Request-Id"] = request_id
    if status == 429 and "Retry-After" not in out and isinstance(body.get("retry_after"), int):
        out["Retry-After"] = str(body["retry_after"])
    ctype = "application/json" if status < 400 else PROBLEM_JSON
    return web.Response(status=status, text=json.dumps(body, default=str), content_type=ctype, headers=out)


async def _document_in_child() -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.web.openapi_dump", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"openapi_dump failed ({proc.returncode}): {err.decode(errors='replace')[-300:]}")
    doc: dict[str, Any] = json.loads(out)
    return doc
