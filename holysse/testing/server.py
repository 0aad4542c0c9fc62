"""The fault-injecting fake LLM server on a real socket (standard library only).

:class:`FakeServer` speaks OpenAI chat completions, Anthropic Messages and
OpenAI Responses over HTTP/1.1 with Server-Sent Events, answers with a
deterministic :class:`~holysse.testing.model.FakeModel`, keeps generations so
clients can resume (``Last-Event-ID``, ``starting_after``), and misbehaves on
request through a :class:`~holysse.testing.faults.Fault` plan::

    with FakeServer(answer_chars=600) as server:
        server.set_faults([Fault.fin(server.event_offsets(body)[10] + 3)])
        ...  # point a client at server.url
        assert server.requests[-1].header("Last-Event-ID")

This module owns the lifecycle: the listening socket, the accept thread, one
thread per connection, and a ``close()`` that ends stalls, closes every open
connection and joins every thread, within about a second.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from types import TracebackType
from typing import Any, Mapping

from .connection import Connection
from .faults import FaultPlan, FaultSource
from .framing import event_ends
from .generation import Generation, guess_dialect, plan_generation, resolve_dialect
from .handler import Handler
from .model import FakeModel
from .state import Options, RecordedRequest, ServerState

__all__ = ["FakeServer", "RecordedRequest"]

logger = logging.getLogger(__name__)

_PLACEHOLDER_ID = "0" * 24
_JOIN_BUDGET = 1.0


class FakeServer:
    """A fake OpenAI-compatible LLM server on ``host:port`` (0: any free port).

    :param answer_chars: length of answers in characters (fewer when the
        request's ``max_tokens``/``max_output_tokens`` cuts them).
    :param ids: send an SSE ``id: <gen_id>-<n>`` on every event, in every dialect.
    :param resume: honour ``Last-Event-ID`` (chat, Anthropic) and
        ``GET /v1/responses/{id}?stream=true&starting_after=N`` (Responses,
        for responses created with ``"background": true``).
    :param prefill: continue a final assistant message (chat: ``"prefix": true``
        on it or ``"continue_final_message": true``; Anthropic: always); False:
        treat it as history and answer afresh.
    :param chunked: chunked transfer coding, one HTTP chunk per event; False:
        a close-delimited body with ``Connection: close``.
    :param gzip: ``Content-Encoding: gzip`` (whatever ``Accept-Encoding``
        says), flushed after every event.
    :param token_delay: seconds between events; ``close()`` interrupts it.
    :param ttfb: seconds before the response headers.
    :param api_key: when set, requests need ``Authorization: Bearer <key>``
        (or ``x-api-key: <key>`` on ``/v1/messages``), else 401.
    :param faults: the fault plan: a list (one entry per streaming request) or
        a callable taking the :class:`RecordedRequest`.
    :param seed: seeds the fake model's vocabulary choice.
    :param keepalive_comments: send a ``: keep-alive`` comment block before
        every 8th event (inside that event's piece, so offsets stay per event).
    :param token_scale: multiplies the length of every token (1-6 characters
        by default): fewer, longer events for the same answer.
    :param sse_retry: send an SSE ``retry: <ms>`` field in the first event of
        every stream (``None``: never).
    :param host: the address to listen on.
    :param port: the port (0: a free one).

    Faults are taken before authentication and validation (like a proxy in
    front of the API): every POST to a streaming endpoint and every
    ``GET /v1/responses/{id}`` consumes one entry of a list plan.
    """

    def __init__(
        self,
        *,
        answer_chars: int = 1200,
        ids: bool = True,
        resume: bool = True,
        prefill: bool = True,
        chunked: bool = True,
        gzip: bool = False,
        token_delay: float = 0.0,
        ttfb: float = 0.0,
        api_key: str | None = None,
        faults: FaultSource = None,
        seed: int = 0,
        keepalive_comments: bool = False,
        token_scale: int = 1,
        sse_retry: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if answer_chars < 0:
            raise ValueError("answer_chars must be >= 0.")
        if isinstance(token_scale, bool) or not isinstance(token_scale, int) or token_scale < 1:
            raise ValueError("token_scale must be an int >= 1.")
        options = Options(answer_chars, ids, resume, prefill, chunked, gzip, token_delay, ttfb, api_key,
                          keepalive_comments, token_scale, sse_retry)
        #: The fake model answering requests (``server.model.tool_arguments(...)``).
        self.model = FakeModel(seed)
        self._state = ServerState(options, self.model, FaultPlan(faults))
        self._handler = Handler(self._state)
        self._host = host
        self._port = port
        self._listener: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None  # wakes the accept loop
        self._serve_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._started = False
        self._closed = False

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> FakeServer:
        """Bind, listen and start serving; returns once connections are accepted.

        :raises OSError: the address cannot be bound.
        """
        with self._lock:
            if self._started:
                return self
            family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
            listener = socket.socket(family, socket.SOCK_STREAM)
            try:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((self._host, self._port))
                listener.listen(256)
                listener.setblocking(False)
            except OSError:
                listener.close()
                raise
            self._listener = listener
            self._wake = socket.socketpair()
            self._port = listener.getsockname()[1]
            self._serve_thread = threading.Thread(target=self._serve, name=f"holysse-fake-{self._port}",
                                                  daemon=True)
            self._started = True
        self._serve_thread.start()
        logger.debug("Fake server listening on %s", self.url)
        return self

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FakeServer {self.url} {self._state.options!r}>"

    def _serve(self) -> None:
        assert self._listener is not None and self._wake is not None
        wake = self._wake[0]
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while not self._state.closing.is_set():
                for key, _ in selector.select():
                    if key.fileobj is wake:
                        return
                    self._accept()

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            logger.debug("accept failed: %r", exc)
            return
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        thread = threading.Thread(target=self._run_connection, args=(sock,), name="holysse-fake-conn", daemon=True)
        with self._lock:
            self._connections[thread] = sock
        thread.start()

    def _run_connection(self, sock: socket.socket) -> None:
        conn = Connection(sock, self._state.closing)
        try:
            self._handler.serve(conn)
        except Exception:  # noqa: BLE001 - a handler bug must not kill the server silently
            logger.exception("Fake server handler failed")
        finally:
            with self._lock:
                self._connections.pop(threading.current_thread(), None)
            conn.close_fin()

    def close(self) -> None:
        """Stop serving: end stalls and delays, close every open connection,
        join every thread (bounded, about a second). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        self._state.closing.set()
        if started:
            assert self._serve_thread is not None and self._wake is not None
            self._wake[1].send(b"x")
            self._serve_thread.join(_JOIN_BUDGET)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            connections = dict(self._connections)
        for sock in connections.values():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + _JOIN_BUDGET
        for thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))
        for sock in self._wake or ():
            sock.close()
        left = [t.name for t in connections if t.is_alive()]
        if left:
            logger.warning("Fake server closed with %d connection threads still running", len(left))

    # -- what tests read ----------------------------------------------------

    @property
    def port(self) -> int:
        """The listening port (known after :meth:`start`)."""
        return self._port

    @property
    def url(self) -> str:
        """The base URL clients use, ``http://127.0.0.1:PORT/v1``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in arrival order (a copy)."""
        return self._state.requests

    @property
    def answers(self) -> list[str]:
        """Every complete answer the model generated, in order (a copy); for a
        prefill, the prefilled partial followed by the continuation."""
        return self._state.answers

    def set_faults(self, faults: FaultSource) -> None:
        """Replace the fault plan (a list starts from its first entry)."""
        self._state.plan.replace(faults)

    def expire_responses(self) -> None:
        """Forget every stored generation: Responses retrieval then gives 404,
        and ``Last-Event-ID`` starts a new generation (a server that forgot)."""
        self._state.store.clear()

    # -- what the server would send ----------------------------------------

    def _generation(self, body: Mapping[str, Any], dialect: str | None) -> Generation:
        name = resolve_dialect(dialect) if dialect else guess_dialect(body)
        planned = plan_generation(self.model, dict(body), name, answer_chars=self._state.options.answer_chars,
                                  prefill=self._state.options.prefill, gen_id=_PLACEHOLDER_ID,
                                  created=int(time.time()), token_scale=self._state.options.token_scale)
        return planned.generation

    def expected_text(self, body: Mapping[str, Any], dialect: str | None = None) -> str:
        """The answer text the server streams for ``body`` (for a prefill
        request, the continuation). Only meaningful for deterministic requests
        (a ``seed``, or no ``temperature``/``temperature`` 0).

        :param dialect: ``"openai-chat"``, ``"anthropic"`` or ``"openai-responses"``
            (default: Responses when ``body`` has ``input``, else chat).
        :raises holysse.testing.generation.RequestError: the server would refuse ``body``.
        """
        return self._generation(body, dialect).text

    def body_for(self, body: Mapping[str, Any], dialect: str | None = None) -> bytes:
        """The complete SSE payload (decoded body, before chunking and gzip)
        the server sends for ``body`` with no fault. Byte-for-byte equal to
        what a request gets except the generation id and ``created``
        timestamp, which have the same widths."""
        return b"".join(self._handler.pieces(self._generation(body, dialect)))

    def event_offsets(self, body: Mapping[str, Any], dialect: str | None = None) -> list[int]:
        """Payload offsets where each event of :meth:`body_for` ends (just
        after its blank line), to aim cuts at event boundaries."""
        return event_ends(self._handler.pieces(self._generation(body, dialect)))
