"""``holysse.openai.OpenAI``: openai-python's client shape on holysse.

The constructor takes the openai arguments that matter (``api_key``,
``organization``, ``project``, ``base_url``, ``timeout``, ``max_retries``,
``default_headers``, ``default_query``) plus any :class:`holysse.Client`
option (``resume=``, ``provider=``, ``prices=``, ``sleep=`` ...). There is no
``http_client``: holysse owns its connections.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from ..client import Client
from ..retry import RetryPolicy
from ..transport import Timeout
from ._chat import ChatCompletionStream, chat_completion
from ._errors import OpenAIError
from ._responses import Responses

__all__ = ["OpenAI", "to_timeout"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def to_timeout(value: Any) -> Timeout | None:
    """A holysse :class:`Timeout` from openai's ``timeout``: seconds, an
    ``httpx.Timeout`` (its ``connect`` and ``read``), a holysse ``Timeout``,
    or ``None`` for no limit."""
    if value is None:
        return Timeout(None, None, None)
    if isinstance(value, Timeout):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Timeout(connect=float(value), read=float(value))
    if hasattr(value, "connect") and hasattr(value, "read"):
        return Timeout(connect=value.connect, read=value.read)
    raise TypeError(f"timeout must be a number of seconds, an httpx.Timeout or None, not {value!r}.")


class OpenAI:
    """A drop-in for ``openai.OpenAI`` whose streams survive cuts.

    :param api_key: defaults to ``$OPENAI_API_KEY``.
    :param base_url: defaults to ``$OPENAI_BASE_URL`` or the OpenAI API.
    :param timeout: seconds (connect and read), an ``httpx.Timeout``, or a
        :class:`holysse.Timeout`; the read timeout is the longest silence
        before a stall is declared and the stream resumed.
    :param max_retries: reconnect attempts in a row without progress (a
        stream that keeps advancing may reconnect more often).
    :param holysse_options: any other :class:`holysse.Client` option.
    :raises OpenAIError: no API key.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        base_url: str | None = None,
        timeout: Any = ...,
        max_retries: int = 2,
        default_headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, Any] | None = None,
        http_client: Any = None,
        **holysse_options: Any,
    ) -> None:
        if http_client is not None:
            raise TypeError("holysse.openai.OpenAI takes no http_client; pass session= (a requests.Session) instead.")
        if holysse_options.get("on_divergence", "raise") != "raise":
            raise TypeError("holysse.openai cannot take text back, so a diverged replay always raises APIError.")
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise OpenAIError(
                "The api_key client option must be set either by passing api_key to the client or by setting the "
                "OPENAI_API_KEY environment variable"
            )
        self.api_key = api_key
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self.max_retries = max_retries
        headers = dict(default_headers or {})
        if organization:
            headers["OpenAI-Organization"] = organization
        if project:
            headers["OpenAI-Project"] = project
        self._query = dict(default_query or {})
        options: dict[str, Any] = {"retry": RetryPolicy(max_attempts=max_retries), **holysse_options}
        if timeout is not ...:
            options["timeout"] = to_timeout(timeout)
        #: The holysse client underneath (its connection pool is shared by every call).
        self.holysse = Client(api_key, self.base_url, headers=headers, on_divergence="raise", **options)
        self.chat = Chat(self)
        self.responses = Responses(self._stream, self.holysse.base_url)

    def __repr__(self) -> str:
        return f"<holysse.openai.OpenAI base_url={self.base_url!r}>"

    def _stream(self, dialect: str, body: dict[str, Any]) -> Any:
        """Start a holysse stream with openai's per-call options."""
        query = {**self._query, **(body.pop("extra_query", None) or {})}
        timeout = body.pop("timeout", ...)
        return self.holysse.stream(
            dialect=dialect,
            extra_headers=body.pop("extra_headers", None),
            extra_query=query or None,
            extra_body=body.pop("extra_body", None),
            timeout=None if timeout is ... else to_timeout(timeout),
            **body,
        )

    def close(self) -> None:
        """Release the connections."""
        self.holysse.close()

    def __enter__(self) -> OpenAI:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Chat:
    """``client.chat``."""

    def __init__(self, client: OpenAI) -> None:
        self.completions = Completions(client)


class Completions:
    """``client.chat.completions``."""

    def __init__(self, client: OpenAI) -> None:
        self._client = client

    def create(self, *, model: str, messages: Any, stream: bool = False, **params: Any) -> Any:
        """openai's ``chat.completions.create``: a :class:`ChatCompletionStream`
        of ``ChatCompletionChunk`` with ``stream=True``, else a
        ``ChatCompletion`` (read from a stream underneath, so it survives
        cuts too). Every other argument goes to the request as in openai."""
        n = params.get("n")
        if n not in (None, 1):
            raise TypeError(f"holysse.openai reads one choice; n={n!r} is not supported (use n=1).")
        options = params.get("stream_options")
        include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
        if not stream:
            params.pop("stream_options", None)  # usage is always wanted for the ChatCompletion
        url = self._client.holysse.base_url + "/chat/completions"
        holysse_stream = self._client._stream("openai-chat", dict(params, model=model, messages=messages))
        if stream:
            return ChatCompletionStream(holysse_stream, model, include_usage, url)
        return chat_completion(holysse_stream, model, url)
