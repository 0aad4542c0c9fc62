"""Wire dialects: one module per API shape.

``get_dialect("openai-chat")`` returns the dialect object the client uses;
names: ``openai-chat`` (default), ``anthropic``, ``openai-responses``.
"""

from __future__ import annotations

import importlib

from ..exceptions import UsageError
from .base import Dialect

__all__ = ["Dialect", "get_dialect", "DIALECTS"]

#: Dialect name -> "module:class".
DIALECTS = {
    "openai-chat": "openai_chat:OpenAIChat",
    "anthropic": "anthropic:Anthropic",
    "openai-responses": "openai_responses:OpenAIResponses",
}
_ALIASES = {"openai": "openai-chat", "chat": "openai-chat", "messages": "anthropic", "responses": "openai-responses"}


def get_dialect(dialect: str | Dialect) -> Dialect:
    """The dialect object for a name (or the object itself).

    :raises UsageError: for an unknown name.
    """
    if isinstance(dialect, Dialect):
        return dialect
    name = _ALIASES.get(dialect, dialect)
    target = DIALECTS.get(name)
    if target is None:
        raise UsageError(f"Unknown dialect {dialect!r}; use one of {', '.join(DIALECTS)}.")
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ModuleNotFoundError:
        raise UsageError(f"The {name!r} dialect is not available in this version of holysse.") from None
    dialect_class: type[Dialect] = getattr(module, class_name)
    return dialect_class()
