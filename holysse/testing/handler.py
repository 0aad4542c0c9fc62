"""Request handling of the fake server: routing, authentication, fault
application, generation and resume, and the streamed response.

One :class:`Handler` serves every connection of a server; it is stateless
apart from the shared :class:`~holysse.testing.state.ServerState`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from .connection import BadRequest, Connection, HTTPRequest
from .dialects import SSEItem, encode_events, error_body, final_json, models_json, stream_error_events
from .faults import Fault
from .framing import CHUNKED, CLOSE, KEEPALIVE, LENGTH, plan_writes, sse_bytes
from .generation import ANTHROPIC, CHAT, RESPONSES, Generation, RequestError, plan_generation
from .state import RecordedRequest, ServerState

__all__ = ["Handler", "STREAM_PATHS", "MODELS"]

logger = logging.getLogger(__name__)

#: Streaming endpoints and their dialects.
STREAM_PATHS = {"/v1/chat/completions": CHAT, "/v1/messages": ANTHROPIC, "/v1/responses": RESPONSES}
#: What ``GET /v1/models`` lists.
MODELS = ("fake-1", "fake-large", "demo-model")

_RESPONSES_PREFIX = "/v1/responses/"
_KEEPALIVE_EVERY = 8
_HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Please sign in</h1></body></html>"


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


class Handler:
    """Serves requests on connections, with the shared ``state``."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.options = state.options

    # -- connection loop ----------------------------------------------------

    def serve(self, conn: Connection) -> None:
        """Answer requests on ``conn`` until it is closed or must close."""
        try:
            while not self.state.closing.is_set():
                request = conn.read_request()
                if request is None or not self.respond(conn, request):
                    break
        except BadRequest as exc:
            logger.debug("Bad request: %s", exc)
            self._try_write(conn, Connection.head(400, [("Content-Length", "0"), ("Connection", "close")]))
        except OSError as exc:
            logger.debug("Connection ended: %r", exc)

    @staticmethod
    def _try_write(conn: Connection, data: bytes) -> None:
        try:
            conn.write(data)
        except OSError:
            pass

    def respond(self, conn: Connection, request: HTTPRequest) -> bool:
        """Answer one request; returns whether the connection may be reused."""
        record = self.state.record(request.method, request.path, request.query, request.headers,
                                   request.body, _parse_json(request.body))
        path = request.path
        dialect = ANTHROPIC if path == "/v1/messages" else CHAT
        streaming = (request.method == "POST" and path in STREAM_PATHS) or (
            request.method == "GET" and path.startswith(_RESPONSES_PREFIX))
        fault = self.state.plan.take(record) if streaming else None
        if fault is not None:
            logger.debug("Request %d gets fault %s", record.index, fault.describe())
        keep = request.keep_alive
        if fault is not None and fault.kind == "headers_stall":
            conn.hold(fault.seconds)
            return False
        if fault is not None and fault.kind == "status":
            return self._status_fault(conn, fault, dialect, keep)
        if fault is not None and fault.kind == "content_type":
            return self._content_type_fault(conn, fault, dialect, keep)
        try:
            self._authorize(request)
            return self._route(conn, request, record, fault, keep)
        except RequestError as exc:
            return self._send_plain(conn, exc.status, error_body(dialect, exc.status, exc.message, exc.error_type),
                                    keep)

    def _authorize(self, request: HTTPRequest) -> None:
        key = self.options.api_key
        if key is None or request.header("Authorization") == f"Bearer {key}":
            return
        if request.path == "/v1/messages" and request.header("x-api-key") == key:
            return
        given = request.header("Authorization") or request.header("x-api-key")
        message = "Incorrect API key provided." if given else "You didn't provide an API key."
        raise RequestError(401, message)

    def _route(self, conn: Connection, request: HTTPRequest, record: RecordedRequest, fault: Fault | None,
               keep: bool) -> bool:
        path, method = request.path, request.method
        if path == "/v1/models" and method == "GET":
            return self._send_plain(conn, 200, models_json(MODELS), keep)
        if path in STREAM_PATHS and method == "POST":
            return self._post(conn, request, record, STREAM_PATHS[path], fault, keep)
        if path.startswith(_RESPONSES_PREFIX) and method == "GET":
            return self._retrieve(conn, request, path[len(_RESPONSES_PREFIX):], fault, keep)
        if path in STREAM_PATHS or path == "/v1/models":
            raise RequestError(405, f"Method {method} is not allowed on {path}.")
        raise RequestError(404, f"Unknown request URL: {method} {path}.")

    # -- faults before any answer -------------------------------------------

    def _status_fault(self, conn: Connection, fault: Fault, dialect: str, keep: bool) -> bool:
        headers = list(fault.headers)
        if fault.retry_after is not None:
            headers.append(("Retry-After", str(fault.retry_after)))
        if fault.retry_after_ms is not None:
            headers.append(("retry-after-ms", str(fault.retry_after_ms)))
        body = fault.body
        if body is None:
            message = f"Injected status {fault.status_code} from the holysse fake server."
            body = error_body(dialect, fault.status_code, message)
        return self._send_plain(conn, fault.status_code, body, keep, headers)

    def _content_type_fault(self, conn: Connection, fault: Fault, dialect: str, keep: bool) -> bool:
        media_type = fault.media_type or "text/plain"
        body = fault.body
        if body is None:
            json_type = "json" in media_type
            body = error_body(dialect, 500, "An unexpected JSON answer.") if json_type else _HTML
        return self._send_plain(conn, 200, body, keep, media_type=media_type)

    # -- answers ------------------------------------------------------------

    def _post(self, conn: Connection, request: HTTPRequest, record: RecordedRequest, dialect: str,
              fault: Fault | None, keep: bool) -> bool:
        body = record.body
        if not isinstance(body, dict):
            raise RequestError(400, "We could not parse the JSON body of your request: expected a JSON object.")
        gen, start = None, 0
        last_id = request.header("Last-Event-ID")
        dropped = fault is not None and fault.kind == "drop_ids"
        if last_id and self.options.resume and dialect != RESPONSES and not dropped:
            gen, start = self._lookup_cursor(last_id, dialect)
        if gen is None:
            gen = self.generate(body, dialect)
        if body.get("stream") is not True:
            return self._send_plain(conn, 200, final_json(gen), keep, fault=fault)
        return self._send_stream(conn, gen, start, fault, keep)

    def _lookup_cursor(self, last_id: str, dialect: str) -> tuple[Generation | None, int]:
        gen_id, _, number = last_id.strip().rpartition("-")
        gen = self.state.store.get(gen_id)
        if gen is None or gen.dialect != dialect or not number.isdigit():
            logger.debug("Unknown Last-Event-ID %r: starting a new generation", last_id)
            return None, 0
        return gen, int(number) + 1

    def generate(self, body: dict[str, Any], dialect: str) -> Generation:
        """Plan, store and record a new generation for ``body``.

        :raises RequestError: invalid body.
        """
        planned = plan_generation(
            self.state.model, body, dialect, answer_chars=self.options.answer_chars,
            prefill=self.options.prefill, gen_id=self.state.new_gen_id(), created=_now(),
            token_scale=self.options.token_scale,
        )
        self.state.store.put(planned.generation)
        self.state.add_answer(planned.full_answer)
        return planned.generation

    def _retrieve(self, conn: Connection, request: HTTPRequest, response_id: str, fault: Fault | None,
                  keep: bool) -> bool:
        gen = self.state.store.get(response_id[5:]) if response_id.startswith("resp_") else None
        if gen is None or gen.dialect != RESPONSES or not gen.background or not self.options.resume:
            raise RequestError(404, f"No response found with id '{response_id}'.")
        query = request.query
        if query.get("stream") != "true":
            return self._send_plain(conn, 200, final_json(gen), keep, fault=fault)
        after = query.get("starting_after")
        if after is not None and not after.lstrip("-").isdigit():
            raise RequestError(400, f"Invalid 'starting_after': {after!r}.")
        start = max(0, int(after) + 1) if after is not None else 0
        return self._send_stream(conn, gen, start, fault, keep)

    # -- writing ------------------------------------------------------------

    def pieces(self, gen: Generation, start: int = 0, fault: Fault | None = None) -> list[bytes]:
        """The payload of ``gen`` from event ``start``, one piece per event,
        with ``fault``'s malformed JSON or error event applied."""
        events: list[SSEItem] = encode_events(gen)
        out: list[bytes] = []
        bad = fault.at_event if fault is not None and fault.kind == "malformed_json" else -1
        for number in range(start, len(events)):
            event_type, data = events[number]
            if len(out) == bad:
                data = data[: max(1, len(data) // 2)]
            event_id = f"{gen.gen_id}-{number}" if self.options.ids else None
            piece = sse_bytes(data, event=event_type, event_id=event_id)
            if self.options.keepalive_comments and number % _KEEPALIVE_EVERY == _KEEPALIVE_EVERY - 1:
                piece = KEEPALIVE + piece
            if self.options.sse_retry is not None and not out:
                piece = b"retry: %d\n" % self.options.sse_retry + piece
            out.append(piece)
        if fault is not None and fault.kind == "error_event" and out:
            at = min(fault.at_event, len(out) - 1)
            errors = stream_error_events(gen, start + at, fault.error_type, fault.message, fault.retryable)
            out = out[:at] + [sse_bytes(data, event=event_type) for event_type, data in errors]
        return out

    def _headers(self, media_type: str, extra: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
        return [("Content-Type", media_type), ("x-request-id", f"req_{uuid.uuid4().hex}"),
                ("Server", "holysse-fake"), *(extra or ())]

    def _send_stream(self, conn: Connection, gen: Generation, start: int, fault: Fault | None, keep: bool) -> bool:
        framing = CHUNKED if self.options.chunked else CLOSE
        writes = plan_writes(self.pieces(gen, start, fault), framing, self.options.gzip, fault)
        headers = self._headers("text/event-stream; charset=utf-8", [("Cache-Control", "no-cache")])
        headers.append(("Transfer-Encoding", "chunked") if framing == CHUNKED else ("Connection", "close"))
        if self.options.gzip:
            headers.append(("Content-Encoding", "gzip"))
        if not self._send(conn, Connection.head(200, headers), writes.parts, self.options.token_delay):
            return False
        return self._finish(conn, fault, keep and framing == CHUNKED)

    def _send_plain(self, conn: Connection, status: int, body: bytes, keep: bool,
                    extra: list[tuple[str, str]] | None = None, *, media_type: str = "application/json",
                    fault: Fault | None = None) -> bool:
        headers = self._headers(media_type, extra)
        headers.append(("Content-Length", str(len(body))))
        if not keep:
            headers.append(("Connection", "close"))
        writes = plan_writes([body], LENGTH, False, fault)
        if not self._send(conn, Connection.head(status, headers), writes.parts, 0.0):
            return False
        return self._finish(conn, fault, keep)

    def _send(self, conn: Connection, head: bytes, parts: list[bytes], delay: float) -> bool:
        """Write the head and the parts, pausing ``delay`` between parts (and
        ``ttfb`` before the head); False when the server shut down meanwhile."""
        closing = self.state.closing
        if self.options.ttfb and closing.wait(self.options.ttfb):
            return False
        if not delay:
            conn.write(head + b"".join(parts))
            return True
        conn.write(head + (parts[0] if parts else b""))
        for part in parts[1:]:
            if closing.wait(delay):
                return False
            conn.write(part)
        return True

    @staticmethod
    def _finish(conn: Connection, fault: Fault | None, keep: bool) -> bool:
        """End the response the way ``fault`` says; whether to keep the connection."""
        kind = fault.kind if fault is not None else None
        if kind == "rst":
            conn.close_rst()
            return False
        if kind == "stall":
            conn.hold(fault.seconds if fault is not None else None)
            return False
        if kind == "fin" or not keep:
            conn.close_fin()
            return False
        return True


def _now() -> int:
    return int(time.time())
