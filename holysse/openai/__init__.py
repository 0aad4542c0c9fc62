"""holysse.openai: a drop-in for openai-python's chat and Responses calls,
carried by holysse's resume.

Change the import line and nothing else::

    import holysse.openai as openai          # was: import openai

    client = openai.OpenAI(api_key=..., base_url=...)
    try:
        with client.chat.completions.create(model="gpt-4.1", messages=[...], stream=True) as stream:
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    print(chunk.choices[0].delta.content, end="")
    except openai.RateLimitError:
        ...

With ``openai`` installed (``pip install 'holysse[openai]'``) the chunks,
completions and Responses events ARE openai's own types
(``openai.types.chat.ChatCompletionChunk``, ...) and the exceptions are
openai's classes, so ``except openai.APIError`` and type-checked code work
unchanged; without it, light objects and exception classes with the same
names and attributes. The real ``openai`` is imported here only, never by
``import holysse``.

What differs from openai-python: a cut stream is resumed underneath (the
chunks carry the answer exactly once); a replay that diverges cannot take
text back, so it raises ``APIError`` with the text received in
``exc.partial`` (every translated error carries ``partial``); one choice
(``n=1``); no ``http_client`` (pass ``session=``), and any
:class:`holysse.Client` option is accepted by :class:`OpenAI`.
"""

from __future__ import annotations

from ._client import OpenAI
from ._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    OpenAIError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
    real_openai,
)

__all__ = [
    "OpenAI", "OpenAIError", "APIError", "APIStatusError", "APIConnectionError", "APITimeoutError",
    "BadRequestError", "AuthenticationError", "PermissionDeniedError", "NotFoundError", "ConflictError",
    "UnprocessableEntityError", "RateLimitError", "InternalServerError", "USING_OPENAI_TYPES",
]

#: Whether the objects and exceptions are openai-python's own (it is installed).
USING_OPENAI_TYPES = real_openai is not None
