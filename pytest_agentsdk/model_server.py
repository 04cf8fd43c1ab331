"""The scripted Messages API: an HTTP server on 127.0.0.1 that the real Claude Code CLI talks to.

The scripted CLI (:mod:`pytest_agentsdk.transport`) plays the CLI's stdout; this plays the model
instead, so the *real* CLI decides what to emit. Bug 3 is made by the CLI, so only this can tell
whether a CLI release has it: the server knows what it served each agent (an ``end_turn``, a
``stop_reason: null``, a stream cut mid-way), which is the ground truth the oracle compares with
what the SDK later reports.

Replies are queued per caller: the main agent's requests take ``main`` replies in order, a
subagent's (``cc_is_subagent=true`` in its first system block, REAL_CLI.md) take ``subagent``
replies. A request with nothing queued gets a 400 ``invalid_request_error`` naming it (the CLI
fails the turn at once, never a hang) and is listed in :attr:`ScriptedModel.unscripted`. The
server is the standard library's threading HTTP server: real HTTP parsing, chunked SSE.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: How a reply's stream ends: in full; without ``message_stop`` (the body still ends cleanly);
#: cut mid-stream (the connection closes before the last chunk); dropped (no response at all).
ENDINGS = ("complete", "no_message_stop", "cut", "drop")
ROLES = ("main", "subagent")
MODEL = "claude-scripted-1"


class ModelScriptError(ValueError):
    """A reply that cannot be served: the message names the field."""


@dataclass
class Reply:
    """One scripted model turn: content blocks, the ``stop_reason`` its ``message_delta`` carries
    (None: ``stop_reason: null``), how the stream ends, what the CLI's non-streaming retry of a
    broken stream gets (None: an error), and optionally which request it answers."""

    blocks: list[dict[str, Any]]
    stop_reason: str | None = "end_turn"
    ending: str = "complete"
    fallback: Reply | None = None
    #: serve this reply to the first request whose last user message contains this text (e.g.
    #: ``"<task-notification>"``: the CLI's own turn reacting to a finished task), whenever it
    #: comes; replies without it are served in order to the requests no ``when`` claims
    when: str | None = None
    #: hold the reply until :meth:`ScriptedModel.open` is called with this name: a story decides
    #: when a background agent finishes (after turn 1's result, during turn 2), not a clock
    gate: str | None = None
    #: once reached, answer every further request of its caller (a CLI version that asks again
    #: after a broken stream gets the same answer however many times it asks)
    repeat: bool = False
    #: open this gate once the reply has been served in full (one agent's reply waits for another's)
    opens: str | None = None

    def __post_init__(self) -> None:
        if self.ending not in ENDINGS:
            raise ModelScriptError(f"Reply.ending: {self.ending!r} is not one of {', '.join(ENDINGS)}")
        for i, block in enumerate(self.blocks):
            if not isinstance(block, dict) or block.get("type") not in ("text", "tool_use"):
                raise ModelScriptError(f"Reply.blocks[{i}]: give text(...) or tool_use(...) blocks, not {block!r}")

    def describe(self) -> str:
        kinds = "+".join(b["type"] if b["type"] == "text" else f"tool_use:{b['name']}" for b in self.blocks)
        return f"{kinds} stop_reason={self.stop_reason} ending={self.ending}"

    @property
    def ends_cleanly(self) -> bool:
        """Whether the agent was told its turn ended: the model side of bug 3's ground truth."""
        return self.ending == "complete" and self.stop_reason == "end_turn"


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(id: str, name: str, input: dict[str, Any]) -> dict[str, Any]:
    """A tool call; the id is the script's, so the same story serves the same ids every run."""
    return {"type": "tool_use", "id": id, "name": name, "input": input}


@dataclass
class Request:
    """One request the CLI made, and what it was served."""

    index: int
    role: str
    body: dict[str, Any]
    reply: Reply | None  # None: unscripted
    streamed: bool

    @property
    def last_user_text(self) -> str:
        """The text of the request's last user message (a task-notification arrives this way)."""
        messages = self.body.get("messages") or []
        for message in reversed(messages):
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                return "".join(b.get("text", "") for b in content if isinstance(b, dict))
        return ""


def is_subagent(body: dict[str, Any]) -> bool:
    """A subagent's requests carry ``cc_is_subagent=true`` in the first system block."""
    system = body.get("system")
    first = system[0] if isinstance(system, list) and system else system
    first_text = first.get("text", "") if isinstance(first, dict) else str(first or "")
    return "cc_is_subagent=true" in first_text


@dataclass
class ScriptedModel:
    """Serve queued replies on ``http://127.0.0.1:PORT`` (``url``) until :meth:`stop`.

    Use as a context manager (or the ``scripted_model`` fixture); every request is recorded in
    :attr:`requests`, in arrival order.
    """

    main: list[Reply] = field(default_factory=list)
    subagent: list[Reply] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    #: how long a gated reply waits for its gate before the request fails
    gate_timeout: float = 30.0
    _gates: dict[str, threading.Event] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> ScriptedModel:
        model = self

        class Handler(_Handler):
            scripted = model

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-model", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> ScriptedModel:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("ScriptedModel is not running: use it as a context manager or call start()")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ------------------------------------------------------------ what was served
    @property
    def unscripted(self) -> list[Request]:
        return [r for r in self.requests if r.reply is None]

    def served(self, role: str) -> list[Request]:
        return [r for r in self.requests if r.role == role and r.reply is not None]

    def open(self, gate: str) -> None:
        """Let the replies held behind ``gate`` be served."""
        self._gate(gate).set()

    def _gate(self, name: str) -> threading.Event:
        with self._lock:
            return self._gates.setdefault(name, threading.Event())

    async def wait_served(self, role: str, containing: str, timeout: float = 30.0) -> None:
        """Until a reply whose text contains ``containing`` has been served to ``role`` (e.g. the
        CLI's reaction turn to a finished task): a story step waits on the model, not on a clock."""
        import anyio

        with anyio.fail_after(timeout):
            while not any(containing in json.dumps(r.reply.blocks) for r in self.served(role) if r.reply is not None):
                await anyio.sleep(0.01)

    def _take(self, body: dict[str, Any], streamed: bool) -> Request:
        role = "subagent" if is_subagent(body) else "main"
        asked = Request(len(self.requests), role, body, None, streamed).last_user_text
        with self._lock:
            if streamed:
                queue = self.subagent if role == "subagent" else self.main
                pick = next((i for i, r in enumerate(queue) if r.when is not None and r.when in asked), None)
                if pick is None:
                    pick = next((i for i, r in enumerate(queue) if r.when is None), None)
                reply = (queue[pick] if queue[pick].repeat else queue.pop(pick)) if pick is not None else None
            else:  # the CLI's non-streaming retry of a broken stream: the last streamed reply's fallback
                last = next((r.reply for r in reversed(self.requests) if r.role == role and r.streamed), None)
                reply = last.fallback if last is not None else None
            request = Request(len(self.requests), role, body, reply, streamed)
            self.requests.append(request)
        return request


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked SSE: a cut stream is a broken body, not a short one
    scripted: ScriptedModel

    def log_message(self, format: str, *args: Any) -> None:  # the CLI's traffic is recorded, not printed
        pass

    def do_POST(self) -> None:
        if not self.path.startswith("/v1/messages"):
            self._error(404, "not_found_error", f"pytest-agentsdk ScriptedModel serves POST /v1/messages only, not {self.path}")
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        streamed = bool(body.get("stream"))
        request = self.scripted._take(body, streamed)
        reply = request.reply
        if reply is None:
            self._error(400, "invalid_request_error",
                        f"pytest-agentsdk ScriptedModel: {request.role} request #{request.index} was not scripted "
                        f"(queue a Reply in ScriptedModel.{request.role})")
            return
        if reply.gate is not None and not self.scripted._gate(reply.gate).wait(self.scripted.gate_timeout):
            self._error(504, "api_error", f"pytest-agentsdk ScriptedModel: gate {reply.gate!r} was never opened")
            return
        if reply.ending == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if not streamed:
            self._json(200, _message(reply, request.index))
            self._served(reply)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events = list(_events(reply, request.index))
        cut_at = len(events) // 2 if reply.ending == "cut" else None
        for i, (name, data) in enumerate(events):
            if i == cut_at:
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(2)
                return
            chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self._served(reply)

    def _served(self, reply: Reply) -> None:
        if reply.opens is not None:
            self.scripted.open(reply.opens)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, kind: str, message: str) -> None:
        self._json(status, {"type": "error", "error": {"type": kind, "message": message}})


def _usage() -> dict[str, int]:
    return {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def _message(reply: Reply, index: int) -> dict[str, Any]:
    return {"id": f"msg_scripted_{index}", "type": "message", "role": "assistant", "model": MODEL,
            "content": reply.blocks, "stop_reason": reply.stop_reason, "stop_sequence": None, "usage": _usage()}


def _events(reply: Reply, index: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """The SSE events of one streamed reply (REAL_CLI.md: the kinds the CLI accepts)."""
    start = {**_message(reply, index), "content": [], "stop_reason": None}
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for i, block in enumerate(reply.blocks):
        if block["type"] == "text":
            yield "content_block_start", {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}
            yield "content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": block["text"]}}
        else:
            head = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            yield "content_block_start", {"type": "content_block_start", "index": i, "content_block": head}
            yield "content_block_delta", {"type": "content_block_delta", "index": i,
                                          "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}}
        yield "content_block_stop", {"type": "content_block_stop", "index": i}
    yield "message_delta", {"type": "message_delta", "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                            "usage": {"output_tokens": 5}}
    if reply.ending != "no_message_stop":
        yield "message_stop", {"type": "message_stop"}
