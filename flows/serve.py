"""`authorbot serve`: the bot over HTTP, a chat page at / and an OpenAI-compatible API at /v1.

One process loads the model once (GET /health answers 503 until then, and until the sampler is
compiled), and one worker thread samples the replies, a request at a time: the others wait in a
bounded queue, and one more than it holds gets 503 with Retry-After. Replies stream as server-sent
events in OpenAI's chunk format; a client that goes away stops its reply. Bad requests get a 4xx
with OpenAI's error body, never a 500.
"""

import asyncio
import hmac
import json
import logging
import queue
import socket
import threading
import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError
from starlette.exceptions import HTTPException

from tasks.config import TRAINED_FIX, ChatConfig, ServeConfig, check_model_dir
from tasks.errors import ConfigError
from tasks.examples import Layout, Turn

log = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("chat.html")
MAX_CHOICES = 8  # replies one request may ask for (OpenAI's n); they are sampled one after another
MAX_BODY = 1_000_000  # bytes of one request
RETRY_AFTER = 2  # seconds a client is told to wait when the queue is full


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: StrictStr | list[dict]  # a string, or OpenAI's parts: [{"type": "text", "text": "..."}]
    name: StrictStr | None = None  # who speaks: a character's name (the bot answers as its last assistant's name)

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return " ".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")


class ChatRequest(BaseModel):
    """What /v1/chat/completions reads; other fields OpenAI defines are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")
    model: StrictStr | None = None
    messages: list[Message] = Field(min_length=1)
    stream: StrictBool = False
    stream_options: dict | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    stop: StrictStr | list[StrictStr] | None = None
    n: int = Field(1, ge=1, le=MAX_CHOICES)
    logit_bias: dict[str, float] | None = None
    top_k: int | None = Field(None, ge=0)  # authorbot's own
    repetition_penalty: float | None = Field(None, ge=1)  # authorbot's own


class ApiError(Exception):
    """A request the API refuses: an HTTP status and OpenAI's error fields."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def response(self, headers: dict | None = None) -> JSONResponse:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        body = {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=headers)


class Job:
    """One reply being sampled for a request: the worker thread puts its pieces, the request reads them."""

    def __init__(self, history: list, speaker: str | None, cfg: ChatConfig, rng, logit_bias: dict, loop) -> None:
        self.history, self.speaker, self.cfg, self.rng, self.logit_bias = history, speaker, cfg, rng, logit_bias
        self.pieces: asyncio.Queue = asyncio.Queue()
        self.loop = loop
        self.cancelled = threading.Event()

    def put(self, item) -> None:
        self.loop.call_soon_threadsafe(self.pieces.put_nowait, item)


class Engine:
    """The model, the worker thread that samples replies one at a time, and the bounded queue before it."""

    def __init__(
        self, model_dir: Path, defaults: ChatConfig, queue_size: int, speaker: str = "", user: str = ""
    ) -> None:
        self.model_dir, self.defaults, self.queue_size = model_dir, defaults, queue_size
        self.speaker, self.user = speaker, user
        self.bot = None
        self.ready = threading.Event()
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.pending = 0  # jobs waiting or being sampled
        self.served = self.cancelled = 0
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the model, compile the sampler (a two-token reply), then take requests."""
        from tasks.chat import Bot

        self.bot = Bot(self.model_dir, self.defaults, self.speaker, self.user)
        hello = [Turn(self.bot.user, "Hello.")]
        list(self.bot.stream(hello, replace(self.defaults, max_new_tokens=2), np.random.default_rng(0)))
        threading.Thread(target=self._work, name="sampler", daemon=True).start()
        self.ready.set()

    def submit(self, jobs: list[Job]) -> bool:
        """Queue a request's jobs, all or none; False when the queue has no room for them all."""
        with self._lock:
            if self.pending + len(jobs) > self.queue_size:
                return False
            self.pending += len(jobs)
        for job in jobs:
            self.jobs.put(job)
        return True

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                self._sample(job)
            except Exception:  # a bug: logged with its traceback, and the next request still served
                log.exception("sampling a reply failed")
                job.put(("stop", 0, 0))
            finally:
                with self._lock:
                    self.pending -= 1

    def _sample(self, job: Job) -> None:
        reply = self.bot.stream(job.history, job.cfg, job.rng, job.logit_bias, job.speaker)
        if not job.cancelled.is_set():
            for piece in reply:
                if job.cancelled.is_set():
                    break
                job.put(piece)
        if job.cancelled.is_set():
            reply.close()
            self.cancelled += 1
        self.served += 1
        job.put((reply.finish_reason or "stop", reply.prompt_tokens, len(reply.tokens)))


class StopFilter:
    """Holds back text that may be the start of a stop string, so a stop string is never sent in part."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.held = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        """(text safe to send, whether a stop string was reached)."""
        text = self.held + piece
        found = [i for s in self.stops if (i := text.find(s)) >= 0]
        if found:
            self.held = ""
            return text[: min(found)], True
        keep = max((k for s in self.stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        self.held = text[len(text) - keep :]
        return text[: len(text) - keep], False


def model_name(model_dir: Path) -> str:
    """The id the API serves the model under: its run folder's name for DIR/model, else its own."""
    path = Path(model_dir).resolve()
    return path.parent.name if path.name == "model" and path.parent.name else path.name


def create_app(engine: Engine, cfg: ServeConfig) -> FastAPI:
    """The web app: page, health, and the OpenAI-compatible routes."""
    app = FastAPI(title="authorbot", docs_url=None, redoc_url=None, openapi_url=None)
    name = model_name(engine.model_dir)
    if cfg.cors:
        app.add_middleware(CORSMiddleware, allow_origins=[cfg.cors], allow_methods=["*"], allow_headers=["*"])

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return ApiError(exc.status_code, str(exc.detail)).response()

    def authorize(request: Request) -> None:
        if cfg.api_key:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), cfg.api_key.encode()):
                raise ApiError(
                    401, "missing or wrong API key: send 'Authorization: Bearer KEY'", code="invalid_api_key"
                )

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text("utf-8"))

    @app.get("/health")
    async def health() -> JSONResponse:
        if not engine.ready.is_set():
            return JSONResponse({"status": "loading"}, status_code=503)
        stats = {"queue": engine.pending, "served": engine.served, "cancelled": engine.cancelled}
        return JSONResponse({"status": "ok", "model": name, **stats})

    @app.get("/config")
    async def page_config() -> dict:
        """What the page needs to know: the model, the sampling defaults, whether the API wants a key."""
        return {"model": name, "api_key_required": bool(cfg.api_key), "defaults": asdict(engine.defaults)}

    @app.get("/v1/models")
    async def models(request: Request) -> dict:
        authorize(request)
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "authorbot"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        authorize(request)
        if not engine.ready.is_set():
            return ApiError(503, "the model is still loading; try again shortly").response({"Retry-After": "5"})
        body = await _read_json(request)
        try:
            req = ChatRequest.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            # the field's path, without the names pydantic gives a union's branches ("content.str")
            fields = ChatRequest.model_fields.keys() | Message.model_fields.keys()
            param = ".".join(str(p) for p in first["loc"] if isinstance(p, int) or p in fields) or None
            raise ApiError(400, f"{param}: {first['msg']}", param=param) from None
        if req.model and req.model != name:
            raise ApiError(
                404, f"model {req.model!r} is not served here; this server has {name!r}", "model", "model_not_found"
            )
        if req.n > engine.queue_size:
            raise ApiError(400, f"n {req.n}: more replies than this server's --queue-size {engine.queue_size}", "n")
        history, speaker = _history(req, engine)
        sampling, bias, loop = _sampling(req, engine), _logit_bias(req, engine), asyncio.get_running_loop()
        jobs = [Job(history, speaker, sampling, rng, bias, loop) for rng in _rngs(req)]
        if not engine.submit(jobs):
            headers = {"Retry-After": str(RETRY_AFTER)}
            return ApiError(503, "the bot is busy: too many requests waiting; try again shortly").response(headers)
        stops = [req.stop] if isinstance(req.stop, str) else req.stop or []
        reply_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        usage_wanted = bool((req.stream_options or {}).get("include_usage"))
        if req.stream:
            events = _events(jobs, stops, reply_id, created, name, usage_wanted)
            return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        try:
            replies = [await _collect(job, StopFilter(stops)) for job in jobs]
        finally:
            for job in jobs:
                job.cancelled.set()  # a client gone before the last reply: the worker skips the rest
        choices = [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": reason}
            for i, (text, reason, _) in enumerate(replies)
        ]
        body = {"id": reply_id, "object": "chat.completion", "created": created, "model": name}
        return {**body, "choices": choices, "usage": _usage(counts for _, _, counts in replies)}

    return app


async def _read_json(request: Request):
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise ApiError(413, f"request body over {MAX_BODY} bytes; send a shorter conversation")
    raw = b""
    async for part in request.stream():
        raw += part
        if len(raw) > MAX_BODY:
            raise ApiError(413, f"request body over {MAX_BODY} bytes; send a shorter conversation")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON ({exc})") from None


def _history(req: ChatRequest, engine: Engine) -> tuple[list, str | None]:
    """The conversation's turns, user's and bot's alike (system messages do not speak, so they are
    left out), each under its message's name (else the server's --you / --as), and whom the bot
    answers as: the last assistant message's name, else the server's --as."""
    bot = engine.bot
    spoken = [m for m in req.messages if m.role != "system"]
    names = {}
    for i, m in enumerate(spoken):
        default = bot.speaker if m.role == "assistant" else bot.user
        try:
            names[i] = bot.character_name(f"messages.{i}.name", m.name, known_only=False) if m.name else default
        except ConfigError as exc:
            raise ApiError(400, str(exc), param=f"messages.{i}.name") from None
    turns = [Turn(names[i], " ".join(m.text().split())) for i, m in enumerate(spoken)]
    if not any(t.text for t in turns):
        raise ApiError(400, "messages: no user or assistant message with text in it", param="messages")
    named = [names[i] for i, m in enumerate(spoken) if m.role == "assistant" and m.name]
    return turns, (named[-1] if named else None)


def _sampling(req: ChatRequest, engine: Engine) -> ChatConfig:
    limit = engine.bot.model.config.n_positions - 1
    max_tokens = req.max_completion_tokens or req.max_tokens or engine.defaults.max_new_tokens
    if max_tokens > limit:
        raise ApiError(400, f"max_tokens {max_tokens}: this model's context allows at most {limit}", "max_tokens")
    chosen = {
        "temperature": req.temperature,
        "top_p": req.top_p,
        "top_k": req.top_k,
        "repetition_penalty": req.repetition_penalty,
        "max_new_tokens": max_tokens,
    }
    try:
        return replace(engine.defaults, **{k: v for k, v in chosen.items() if v is not None})
    except ConfigError as exc:
        raise ApiError(400, str(exc)) from None


def _rngs(req: ChatRequest) -> list[np.random.Generator]:
    """One per reply asked for (n); with a seed, the first draws as a request for one reply does."""
    if req.seed is None:
        return [np.random.default_rng() for _ in range(req.n)]
    return [np.random.default_rng(req.seed if i == 0 else [req.seed, i]) for i in range(req.n)]


def _usage(counts) -> dict:
    """OpenAI's usage of a request from each reply's (prompt tokens, completion tokens): the prompt once."""
    counts = list(counts)
    prompt, completion = counts[0][0], sum(c for _, c in counts)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _logit_bias(req: ChatRequest, engine: Engine) -> dict[int, float]:
    vocabulary = engine.bot.model.config.vocab_size
    bias = {}
    for key, value in (req.logit_bias or {}).items():
        if not key.isdigit() or int(key) >= vocabulary or not -100 <= value <= 100:
            raise ApiError(400, f"logit_bias {key!r}: {value}: token ids below {vocabulary}, values in [-100, 100]")
        bias[int(key)] = value
    return bias


async def _pieces(job: Job, stops: StopFilter):
    """(text, None) pieces, then (None, (finish_reason, (prompt tokens, completion tokens))); a stop string
    ends the reply early."""
    stopped = False
    while True:
        item = await job.pieces.get()
        if isinstance(item, tuple):
            reason, prompt, completion = item
            if not stopped and stops.held:
                yield stops.held, None
            yield None, ("stop" if stopped else reason, (prompt, completion))
            return
        if stopped:
            continue  # the worker stops at its next token
        text, stopped = stops.feed(item)
        if stopped:
            job.cancelled.set()
        if text:
            yield text, None


async def _collect(job: Job, stops: StopFilter) -> tuple[str, str, tuple[int, int]]:
    parts = []
    async for text, end in _pieces(job, stops):
        if end:
            return "".join(parts), *end
        parts.append(text)
    raise AssertionError("a reply always ends")


async def _events(jobs: list[Job], stops: list[str], reply_id: str, created: int, name: str, usage_wanted: bool):
    """Server-sent events in OpenAI's chunk format, each reply's in turn (its index in every chunk), then
    the usage if asked for (a chunk with no choices, as OpenAI sends it) and [DONE]; a client that leaves
    cancels the jobs."""

    def chunk(choices: list[dict], **extra) -> str:
        body = {"id": reply_id, "object": "chat.completion.chunk", "created": created, "model": name}
        # ASCII only: a raw U+0085 or U+2028 in a reply would end the line for splitters like httpx's
        return f"data: {json.dumps({**body, 'choices': choices, **extra})}\n\n"

    def delta(index: int, content: dict, reason: str | None = None) -> str:
        return chunk([{"index": index, "delta": content, "finish_reason": reason}])

    counts = []
    try:
        for index, job in enumerate(jobs):
            yield delta(index, {"role": "assistant", "content": ""})
            async for text, end in _pieces(job, StopFilter(stops)):
                if end:
                    counts.append(end[1])
                    yield delta(index, {}, end[0])
                else:
                    yield delta(index, {"content": text})
        if usage_wanted:
            yield chunk([], usage=_usage(counts))
        yield "data: [DONE]\n\n"
    finally:
        for job in jobs:
            job.cancelled.set()  # gone mid-reply (or done): the worker stops at its next token


def check_port(host: str, port: int) -> None:
    """ConfigError now, rather than a traceback from uvicorn, when the port is taken."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"--host {host} --port {port}: cannot listen there ({exc.strerror}); choose another --port"
            ) from None


def serve(model_dir: Path, cfg: ServeConfig, defaults: ChatConfig, speaker: str = "", user: str = "") -> None:
    """Run the server until Ctrl-C: the model loads in the background while /health says 503."""
    check_model_dir(model_dir, TRAINED_FIX)
    layout = Layout.of(model_dir)  # a name the model does not know fails now, not in the loader thread
    speaker = layout.speaker_name("--as", speaker, model_dir) or layout.character
    user = layout.speaker_name("--you", user, model_dir, known_only=False)
    import uvicorn

    import tasks.chat  # noqa: F401 (TensorFlow and Prefect, whose import sets up logging, before the first line)

    check_port(cfg.host, cfg.port)
    engine = Engine(model_dir, defaults, cfg.queue_size, speaker, user)
    url = f"http://{'127.0.0.1' if cfg.host == '0.0.0.0' else cfg.host}:{cfg.port}"

    def load() -> None:
        engine.load()
        log.info("authorbot serve: ready; open %s/ to chat, OpenAI API at %s/v1 (Ctrl-C stops)", url, url)

    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "listening on %s: the bot is now reachable from the network%s",
            cfg.host,
            "" if cfg.api_key else " by anyone (no --api-key)",
        )
    log.info("loading %s; %s/health answers 503 until it is ready", model_dir, url)
    threading.Thread(target=load, name="loader", daemon=True).start()
    server = uvicorn.Server(uvicorn.Config(create_app(engine, cfg), host=cfg.host, port=cfg.port, log_level="warning"))
    server.run()
