"""The client: configuration, the connection pool, and starting streams.

:class:`Client` holds configuration and the connection pool and is safe to
share between threads. :meth:`Client.stream` checks the arguments, builds the
request with the dialect and returns a :class:`~holysse.stream.Stream` (one
answer, iterable once); the reconnect loop behind it lives in
:mod:`holysse._loop`.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import parse_qsl, urlsplit

from . import _redact
from ._arguments import (
    SECRET_PARAM, check_body, check_headers, check_key, checked_extra_body, checked_query, positive_int,
)
from ._http import is_holysheep
from ._checkpoint import Checkpoint
from ._loop import StreamLoop
from ._strategy import check_strategy
from ._settings import StreamSettings
from ._types import HTTPRequest, Timeout, Transport
from .accumulator import Accumulator
from .dialects import get_dialect
from .dialects.base import Dialect, Endpoint, join_url, with_query
from .dialects.profiles import PROFILES, ProfileRule, ProviderProfile, guess_profile
from .events import Event
from .exceptions import ProtocolError, UsageError
from .metrics import StreamMetrics
from .pricing import PriceSource, PriceTable
from .retry import RetryPolicy
from .stream import Stream
from .transport import RequestsTransport, is_loopback

__all__ = ["Client", "Stream", "DialectStreams", "DEFAULT_BASE_URL", "API_KEY_ENV"]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.holysheep.ai/v1"
API_KEY_ENV = "HOLYSHEEP_API_KEY"
BASE_URL_ENV = "HOLYSHEEP_BASE_URL"
#: An HTTP header name (RFC 9110 token).


class Client:
    """A streaming client for an OpenAI-compatible (or Anthropic, or
    Responses) API. Safe to share between threads; close it (or use it as a
    context manager) to release its connections.

    :param api_key: the key; defaults to ``$HOLYSHEEP_API_KEY``. Never logged
        or shown in ``repr``.
    :param base_url: defaults to ``$HOLYSHEEP_BASE_URL`` or
        ``https://api.holysheep.ai/v1``.
    :param timeout: a :class:`Timeout`, one number, ``(connect, read)`` or
        ``(connect, read, idle)``; ``read`` is the longest silence allowed
        before a stall is declared, ``idle`` the longest time without an
        answer event (keep-alive comments do not count).
    :param retry: a :class:`RetryPolicy`, a number of attempts, or ``False``.
    :param resume: ``"auto"``, ``"cursor"``, ``"prefill"``, ``"replay"`` or
        ``"none"`` (see the README: how a cut stream continues).
    :param on_divergence: ``"reset"`` (yield :class:`Reset` and start the text
        over) or ``"raise"`` (:class:`StreamDiverged`) when a replay differs.
    :param headers: extra headers for every request.
    :param session: a :class:`requests.Session` to use (proxies, certificates).
    :param max_connections: connections kept open per host for reuse (100):
        at least the number of threads that stream through this client at
        once, or urllib3 discards connections with a "Connection pool is
        full" warning. Ignored with ``session=`` or ``transport=`` (size your
        own adapter).
    :param sleep: called with the delay before a reconnect; by default a wait
        that :meth:`Stream.close` interrupts.
    :param dialect: ``"openai-chat"`` (default), ``"anthropic"`` or
        ``"openai-responses"``.
    :param provider: a :class:`ProviderProfile`, a name from ``PROFILES``, or
        a sequence of :class:`ProfileRule` tried before the built-in ones;
        when omitted, guessed per stream from ``base_url``, the model and the
        dialect (see :mod:`holysse.dialects.profiles`).
    :param prices: model prices for ``stream.metrics.cost``: a
        :class:`~holysse.pricing.PriceTable`, a dict of model name ->
        ``{"input": .., "output": ..}`` (USD per million tokens) or the path
        of a JSON file with that dict; they add to and override the built-in
        prices.
    :param transport: a :class:`Transport` to use instead of requests.
    :param max_event_bytes: the largest SSE event accepted (8 MiB).
    :param max_line_bytes: the longest SSE line accepted (default: as
        ``max_event_bytes``).
    :param max_answer_chars: the longest answer accepted, in characters of
        text, reasoning and tool arguments together (4 Mi), or ``None``.
        Past these limits the stream fails with :class:`ProtocolError`.
    :param on_metrics: called with :class:`StreamMetrics` when each stream ends.
    :param allow_insecure_http: send the key over plain ``http://`` to a
        non-loopback host (refused by default: the key would travel in clear).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: Timeout | float | tuple[float | None, ...] | None = Timeout(),
        retry: RetryPolicy | int | bool | None = None,
        resume: str = "auto",
        on_divergence: str = "reset",
        headers: Mapping[str, str] | None = None,
        session: Any = None,
        sleep: Callable[[float], None] | None = None,
        dialect: str | Dialect = "openai-chat",
        provider: ProviderProfile | str | Sequence[ProfileRule] | None = None,
        prices: PriceSource = None,
        transport: Transport | None = None,
        max_event_bytes: int = 8 << 20,
        max_line_bytes: int | None = None,
        max_answer_chars: int | None = 4 << 20,
        on_metrics: Callable[[StreamMetrics], None] | None = None,
        allow_insecure_http: bool = False,
        max_connections: int = 100,
    ) -> None:
        check_strategy(resume, on_divergence)
        if api_key is not None and not isinstance(api_key, str):
            raise UsageError(f"api_key must be a str, not {type(api_key).__name__}.")
        self._key_source = "api_key=" if api_key else (API_KEY_ENV if os.environ.get(API_KEY_ENV) else None)
        self._api_key = api_key or os.environ.get(API_KEY_ENV) or None
        self.base_url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = Timeout.from_value(timeout)
        self.retry = RetryPolicy.from_value(retry)
        self.resume = resume
        self.on_divergence = on_divergence
        self.headers = dict(headers or {})
        check_headers(self.headers)
        self._header_credential = next((name for name in self.headers if _redact.is_credential(name)), None)
        if self._key_source is None and self._header_credential is not None:
            self._key_source = f"headers= ({self._header_credential})"
        self.sleep = sleep
        self.dialect = get_dialect(dialect)
        self._provider = provider
        self.provider = _profile(provider, self.base_url, self.dialect.name, None)
        self.prices = PriceTable.load(prices)
        self.max_event_bytes = positive_int("max_event_bytes", max_event_bytes)
        self.max_line_bytes = None if max_line_bytes is None else positive_int("max_line_bytes", max_line_bytes)
        self.max_answer_chars = None if max_answer_chars is None else positive_int("max_answer_chars", max_answer_chars)
        self.on_metrics = on_metrics
        self._check_config(allow_insecure_http)
        self._transport: Transport = transport or RequestsTransport(
            session, pool_maxsize=positive_int("max_connections", max_connections))
        self._closed = False
        self._lock = threading.Lock()

    def _check_config(self, allow_insecure_http: bool) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL!r}, not {self.base_url!r}.")
        if parts.username or parts.password:
            raise UsageError("base_url must not carry credentials; pass the key as api_key= or $HOLYSHEEP_API_KEY.")
        secret = next((name for name, _ in parse_qsl(parts.query) if SECRET_PARAM.search(name)), None)
        if secret is not None:
            raise UsageError(
                f"base_url carries a credential in its query ({secret!r}=...), where logs and error messages would "
                "show it; pass the key as api_key=, or as a header with headers={...}."
            )
        if self._api_key is not None:
            check_key(self._api_key, self._key_source or API_KEY_ENV)
            _redact.register(self._api_key)
        _redact.register_headers(self.headers)
        if self._key_source is not None:
            if parts.scheme == "http" and not is_loopback(parts.hostname) and not allow_insecure_http:
                raise UsageError(
                    f"Refusing to send the API key (from {self._key_source}) over plain http:// to "
                    f"{parts.hostname}: it would travel in clear text. Use https://, or pass "
                    "allow_insecure_http=True if this network is trusted."
                )

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def api_key_source(self) -> str | None:
        """Where the key came from (``"api_key="``, ``"HOLYSHEEP_API_KEY"``,
        ``"headers= (x-api-key)"``) or ``None`` when there is no key."""
        return self._key_source

    @property
    def needs_key(self) -> bool:
        """Whether this client has no key for a server that always wants one
        (the HolySheep gateway)."""
        return self._key_source is None and is_holysheep(self.base_url)

    def _check_key_present(self, extra: Mapping[str, str] = {}) -> None:
        if self.needs_key and not any(_redact.is_credential(name) for name in extra):
            raise UsageError(
                f"No API key for {urlsplit(self.base_url).hostname}: set {API_KEY_ENV} (export {API_KEY_ENV}=hs_...) "
                "or pass api_key=."
            )

    @property
    def endpoint(self) -> Endpoint:
        """Where requests go (the key is held but never shown)."""
        return Endpoint(self.base_url, self._api_key, self.headers)

    def settings(self, timeout: Timeout | None = None) -> StreamSettings:
        """The frozen settings a stream starting now runs with (a later
        change of this client's attributes does not reach it)."""
        return StreamSettings(
            base_url=self.base_url,
            retry=self.retry,
            timeout=self.timeout if timeout is None else timeout,
            sleep=self.sleep,
            max_event_bytes=self.max_event_bytes,
            max_line_bytes=self.max_line_bytes,
            max_answer_chars=self.max_answer_chars,
            prices=self.prices,
            key_source=self._key_source,
            client_closed=lambda: self._closed,
        )

    def __repr__(self) -> str:
        key = "set" if self._key_source else "missing"
        return f"<holysse.Client base_url={self.base_url!r} dialect={self.dialect.name!r} key={key}>"

    def stream(
        self,
        *,
        dialect: str | Dialect | None = None,
        resume: str | None = None,
        on_divergence: str | None = None,
        on_text: Callable[[str], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        timeout: Timeout | float | tuple[float | None, ...] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str | int | float] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        resume_from: Checkpoint | None = None,
        **body: Any,
    ) -> Stream:
        """Start streaming one answer. Every keyword not listed here goes into
        the request body (``model``, ``messages``, ``temperature``, ``seed``,
        ``tools``, ...), after the dialect maps it (``max_tokens`` for
        Anthropic, ``input`` for Responses). Nothing is sent until the stream
        is iterated. The ``extra_*`` options and ``timeout`` work as in the
        openai SDK.

        :param dialect: this stream's dialect (``"openai-chat"``,
            ``"anthropic"``, ``"openai-responses"``), instead of the client's.
        :param resume: this stream's resume strategy, instead of the client's.
        :param timeout: this stream's :class:`Timeout` (or one number, or a
            tuple), instead of the client's.
        :param extra_headers: headers added to (and overriding) the client's.
        :param extra_query: query parameters added to the URL of every
            request of this stream.
        :param extra_body: fields merged into the top level of the JSON body
            as sent (after the dialect's mapping; they win over it), and kept
            in every resume request.
        :param resume_from: continue the answer a :class:`~holysse.Checkpoint`
            describes (``stream.checkpoint()``, possibly taken in another
            process), instead of starting one: pass no body keywords, the
            request body and dialect come from the checkpoint. The stream
            first yields a :class:`Resumed` and then only what comes after
            the checkpoint: the checkpoint's own events are **not** yielded
            again (nor passed to ``on_text``/``on_event``), while
            ``stream.text`` (and ``thinking``, ``tool_calls``) hold the whole
            answer, the checkpoint's part included. It resumes by cursor when
            the checkpoint has one, else by prefill when the provider allows,
            else by replay (the re-sent part checked and dropped).
        :raises UsageError: for a closed client or bad arguments.
        """
        if self._closed:
            raise UsageError("This Client is closed; create a new one (or don't call close() before stream()).")
        resume = resume or self.resume
        on_divergence = on_divergence or self.on_divergence
        check_strategy(resume, on_divergence)
        if resume_from is not None:
            body = _checkpoint_body(resume_from, body, dialect)
            dialect = resume_from.dialect
        the_dialect = self.dialect if dialect is None else get_dialect(dialect)
        check_body(body)
        headers = dict(extra_headers or {})
        check_headers(headers)
        _redact.register_headers(headers)
        self._check_key_present(headers)
        endpoint = Endpoint(self.base_url, self._api_key, {**self.headers, **headers})
        request = the_dialect.build_request(endpoint, body)
        if extra_body:
            request = request.replace(json={**request.json, **checked_extra_body(extra_body)})
        if extra_query:
            request = request.replace(url=with_query(request.url, **checked_query(extra_query)))
        if resume_from is not None:
            provider = resume_from.profile()
        else:
            provider = _profile(self._provider, self.base_url, the_dialect.name, body.get("model"))
        accumulator = Accumulator(on_text=on_text, on_event=on_event)
        loop = StreamLoop(
            settings=self.settings(Timeout.from_value(timeout) if timeout is not None else None),
            transport=self._transport,
            dialect=the_dialect,
            request=request,
            provider=provider,
            resume=resume,
            on_divergence=on_divergence,
            accumulator=accumulator,
            body={**body, **(extra_body or {})},
            checkpoint=resume_from,
        )
        return Stream(loop, accumulator, self.on_metrics)

    def models(self, *, timeout: Timeout | float | tuple[float | None, float | None] | None = None) -> list[str]:
        """The ids of the models ``GET {base_url}/models`` lists (the OpenAI
        and Anthropic shape, ``{"data": [{"id": ...}, ...]}``).

        :raises ConnectError: the server cannot be reached.
        :raises AuthenticationError: 401 or 403.
        :raises HTTPStatusError: another error status (404: no such endpoint).
        :raises ProtocolError: the answer is not a JSON model list (an HTML page, say).
        """
        from ._http import read_json

        if self._closed:
            raise UsageError("This Client is closed; create a new one.")
        self._check_key_present()
        headers = {**_model_list_headers(self.dialect.name, self._api_key), **self.headers}
        request = HTTPRequest("GET", join_url(self.base_url, "models"), headers)
        response = self._transport.open(request, Timeout.from_value(timeout) if timeout is not None else self.timeout)
        try:
            payload = read_json(response, self.settings(), self.dialect)
        finally:
            response.close()
        return _model_ids(payload, self.base_url)

    @property
    def messages(self) -> DialectStreams:
        """``client.messages.stream(...)``: stream in the Anthropic Messages dialect."""
        return DialectStreams(self, "anthropic")

    @property
    def responses(self) -> DialectStreams:
        """``client.responses.stream(...)``: stream in the OpenAI Responses dialect."""
        return DialectStreams(self, "openai-responses")

    def close(self) -> None:
        """Release pooled connections. Streams already running finish first."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class DialectStreams:
    """``client.messages`` and ``client.responses``: :meth:`Client.stream`
    with the dialect chosen by the attribute name."""

    def __init__(self, client: Client, dialect: str) -> None:
        self._client = client
        self._dialect = dialect

    def __repr__(self) -> str:
        return f"<holysse.DialectStreams {self._dialect!r}>"

    def stream(self, **kwargs: Any) -> Stream:
        """:meth:`Client.stream` in this dialect (same arguments)."""
        return self._client.stream(dialect=self._dialect, **kwargs)


def _profile(
    provider: ProviderProfile | str | Sequence[ProfileRule] | None, base_url: str, dialect: str, model: Any
) -> ProviderProfile:
    if isinstance(provider, ProviderProfile):
        return provider
    if isinstance(provider, str):
        try:
            return PROFILES[provider]
        except KeyError:
            raise UsageError(
                f"Unknown provider {provider!r}; use one of {sorted(PROFILES)}, a ProviderProfile or ProfileRules."
            ) from None
    rules = tuple(provider or ())
    if not all(isinstance(rule, ProfileRule) for rule in rules):
        raise UsageError("provider= takes a ProviderProfile, a name from PROFILES, or a sequence of ProfileRule.")
    return guess_profile(base_url, model if isinstance(model, str) else None, dialect, rules)


def _model_list_headers(dialect: str, api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if api_key and dialect == "anthropic":
        headers.update({"x-api-key": api_key, "anthropic-version": "2023-06-01"})
    elif api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _model_ids(payload: Any, base_url: str) -> list[str]:
    items = payload.get("data") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise ProtocolError(f"{base_url}/models answered JSON without a model list ('data'): {str(payload)[:120]!r}")
    return [str(item["id"]) for item in items if isinstance(item, dict) and "id" in item]


def _checkpoint_body(checkpoint: Checkpoint, body: Mapping[str, Any], dialect: str | Dialect | None) -> dict[str, Any]:
    if not isinstance(checkpoint, Checkpoint):
        raise UsageError(f"resume_from takes a holysse.Checkpoint, not {type(checkpoint).__name__}.")
    if body:
        raise UsageError(
            f"stream(resume_from=...) continues the checkpoint's own request; remove {', '.join(sorted(body))}."
        )
    name = dialect if isinstance(dialect, str) or dialect is None else dialect.name
    if name is not None and name != checkpoint.dialect:
        raise UsageError(f"The checkpoint was taken in the {checkpoint.dialect!r} dialect, not {name!r}.")
    return dict(checkpoint.body)
