"""Model prices and the cost of one answer, resume waste included.

A :class:`PriceTable` maps model names to a :class:`Price` (US dollars per
million tokens). The built-in table holds the prices below; a user dict or
JSON file adds to it or overrides it::

    client = holysse.Client(prices={"my-model": {"input": 0.5, "output": 1.5}})
    client = holysse.Client(prices="prices.json")   # same shape, in a file

``stream.metrics.cost`` is a :class:`Cost`: the answer (prompt read once,
answer generated once) plus the resume waste (prompt tokens read again by
replayed or prefilled requests, tokens generated again and dropped). For a
model with no known price it says ``unknown`` instead of guessing.

Names match with or without a gateway's ``vendor/`` prefix, a date suffix
(``-2025-04-14``, ``-20250929``) or ``-latest``, and with ``.`` or ``-`` in
version numbers: ``anthropic/claude-sonnet-4.5`` finds ``claude-sonnet-4-5``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping, Union

from .exceptions import UsageError

__all__ = ["Price", "Cost", "TokenCount", "PriceTable", "DEFAULT_PRICES", "PriceSource"]

_MILLION = Decimal(1_000_000)
_SHOWN = Decimal("0.000001")


@dataclass(frozen=True)
class Price:
    """Prices in US dollars per million tokens.

    :param input: prompt tokens.
    :param output: generated tokens (reasoning included).
    :param cached_input: prompt tokens served from the provider's cache
        (``None``: charged as ``input``).
    """

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None

    @classmethod
    def of(cls, value: Price | Mapping[str, Any] | tuple[Any, ...]) -> Price:
        """A price from a :class:`Price`, ``{"input": .., "output": .., "cached_input": ..}``
        or ``(input, output)``.

        :raises UsageError: a missing or negative number.
        """
        if isinstance(value, Price):
            return value
        if isinstance(value, Mapping):
            raw = (value.get("input"), value.get("output"), value.get("cached_input"))
        elif isinstance(value, tuple) and len(value) in (2, 3):
            raw = (*value, None)[:3]
        else:
            raise UsageError(f"A price is {{'input': ..., 'output': ...}} in USD per million tokens, not {value!r}.")
        numbers = [None if v is None else _decimal(v) for v in raw]
        if numbers[0] is None or numbers[1] is None:
            raise UsageError(f"A price needs both 'input' and 'output' (USD per million tokens): {value!r}.")
        return cls(numbers[0], numbers[1], numbers[2])


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise UsageError(f"A price must be a number of US dollars per million tokens, not {value!r}.")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise UsageError(f"A price must be a number of US dollars per million tokens, not {value!r}.") from None
    if not number.is_finite() or number < 0:
        raise UsageError(f"A price must be a finite number >= 0, not {value!r}.")
    return number


#: Built-in prices, USD per million tokens, with where they come from.
DEFAULT_PRICES: Mapping[str, Price] = {
    # OpenAI API pricing, platform.openai.com/docs/pricing: GPT-4.1 $2.00 in, $0.50 cached, $8.00 out.
    "gpt-4.1": Price(Decimal("2.00"), Decimal("8.00"), Decimal("0.50")),
    # Anthropic, platform.claude.com/docs/en/models/sonnet-4-5/overview: $3 in, $15 out; cache reads $0.30.
    "claude-sonnet-4.5": Price(Decimal("3.00"), Decimal("15.00"), Decimal("0.30")),
    # Google, ai.google.dev/gemini-api/docs/pricing: Gemini 2.5 Flash $0.30 in (text), $2.50 out.
    "gemini-2.5-flash": Price(Decimal("0.30"), Decimal("2.50")),
    # DeepSeek, api-docs.deepseek.com/quick_start/pricing: V3.2 $0.28 in (cache miss), $0.028 hit, $0.42 out;
    # deepseek-chat and deepseek-reasoner both serve V3.2.
    "deepseek-v3.2": Price(Decimal("0.28"), Decimal("0.42"), Decimal("0.028")),
    "deepseek-chat": Price(Decimal("0.28"), Decimal("0.42"), Decimal("0.028")),
    "deepseek-reasoner": Price(Decimal("0.28"), Decimal("0.42"), Decimal("0.028")),
}

_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


def _key(model: str) -> str:
    """The name prices are looked up by (see the module docstring)."""
    name = model.strip().lower().rpartition("/")[2]
    return _DATE_SUFFIX.sub("", name).replace(".", "-")


@dataclass(frozen=True)
class TokenCount:
    """The tokens one answer cost, split into the answer and resume waste.

    :param input_tokens: the prompt, read once.
    :param output_tokens: the answer, generated once.
    :param cached_input_tokens: the part of ``input_tokens`` served from the
        provider's prompt cache (when reported).
    :param reread_input_tokens: prompt tokens read again by requests that
        started a new generation after a cut (replay, prefill, retry): their
        reported input, or the prompt's size when they were cut before
        reporting; a prefill also reads the partial answer.
    :param wasted_output_tokens: tokens generated again and dropped (a replay
        regenerates what was delivered). Tokens generated on a connection
        but lost in the cut cannot be seen and are not counted.
    :param estimated: some figure was estimated (a connection reported no
        usage: output counted as one token per content event, input as 0).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reread_input_tokens: int = 0
    wasted_output_tokens: int = 0
    estimated: bool = False


@dataclass(frozen=True)
class Cost:
    """What one answer cost. ``str(cost)`` is one printable line.

    :param model: the model priced.
    :param tokens: the token counts (:class:`TokenCount`).
    :param price: the price used, or ``None`` when the model has no known
        price (then every amount is ``None``).
    """

    model: str | None
    tokens: TokenCount
    price: Price | None

    @property
    def known(self) -> bool:
        """Whether a price was found."""
        return self.price is not None

    @property
    def answer(self) -> Decimal | None:
        """USD for the prompt read once and the answer generated once."""
        if self.price is None:
            return None
        t, p = self.tokens, self.price
        cached = min(t.cached_input_tokens, t.input_tokens) if p.cached_input is not None else 0
        fresh = t.input_tokens - cached
        return (fresh * p.input + cached * (p.cached_input or 0) + t.output_tokens * p.output) / _MILLION

    @property
    def waste(self) -> Decimal | None:
        """USD spent on resuming: prompt read again, tokens generated again."""
        if self.price is None:
            return None
        t, p = self.tokens, self.price
        return (t.reread_input_tokens * p.input + t.wasted_output_tokens * p.output) / _MILLION

    @property
    def total(self) -> Decimal | None:
        """``answer + waste`` in USD, or ``None`` when the price is unknown."""
        answer, waste = self.answer, self.waste
        return None if answer is None or waste is None else answer + waste

    def __str__(self) -> str:
        if self.price is None:
            return f"unknown (no price for model {self.model!r}; pass Client(prices=...))"
        approx = "≈" if self.tokens.estimated else ""
        return f"{approx}{_usd(self.total)} (answer {_usd(self.answer)} + resume waste {_usd(self.waste)})"

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain JSON values (amounts as strings, ``None`` when unknown)."""
        amounts = {name: None if value is None else str(value.quantize(_SHOWN))
                   for name, value in (("total", self.total), ("answer", self.answer), ("waste", self.waste))}
        return {"model": self.model, "currency": "USD", **amounts, **dataclasses.asdict(self.tokens)}

    def breakdown(self) -> str:
        """The figures behind the amounts, one line."""
        t = self.tokens
        line = (f"{t.input_tokens} prompt + {t.output_tokens} output tokens; waste: "
                f"{t.reread_input_tokens} prompt tokens re-read, {t.wasted_output_tokens} output tokens regenerated")
        if self.price is not None:
            p = self.price
            line += f"; {self.model} at ${p.input}/M in, ${p.output}/M out"
            if p.cached_input is not None and t.cached_input_tokens:
                line += f" (${p.cached_input}/M for {t.cached_input_tokens} cached)"
        return line


def _usd(amount: Decimal | None) -> str:
    return "unknown" if amount is None else f"${amount.quantize(_SHOWN)}"


PriceSource = Union["PriceTable", Mapping[str, Any], str, "os.PathLike[str]", None]


class PriceTable:
    """Prices by model name. Immutable; safe to share between threads.

    :param prices: model name -> price (a :class:`Price`, a dict with
        ``input``, ``output`` and optionally ``cached_input``, or a tuple).
    :param defaults: start from :data:`DEFAULT_PRICES` (``prices`` override them).
    :raises UsageError: a malformed price.
    """

    def __init__(self, prices: Mapping[str, Any] | None = None, *, defaults: bool = True) -> None:
        table: dict[str, Price] = {}
        for name, value in ({**(DEFAULT_PRICES if defaults else {}), **(prices or {})}).items():
            table[_key(name)] = Price.of(value)
        self._prices = table

    def __repr__(self) -> str:
        return f"<PriceTable {len(self._prices)} models>"

    @classmethod
    def load(cls, source: PriceSource) -> PriceTable:
        """A table from ``Client(prices=...)``: ``None`` (the built-in
        prices), a table, a dict, or the path of a JSON file holding a dict.

        :raises UsageError: an unreadable file or a malformed price.
        """
        if source is None:
            return cls()
        if isinstance(source, PriceTable):
            return source
        if isinstance(source, Mapping):
            return cls(source)
        try:
            with open(os.fspath(source), encoding="utf-8") as file:
                data = json.load(file)
        except (OSError, ValueError) as exc:
            raise UsageError(f"Could not read prices from {os.fspath(source)!r}: {exc}") from exc
        if not isinstance(data, dict):
            raise UsageError(f"{os.fspath(source)!r} must hold a JSON object of model name -> price.")
        return cls(data)

    def lookup(self, model: str | None) -> Price | None:
        """The price of ``model``, or ``None`` when it is not known."""
        return self._prices.get(_key(model)) if model else None

    def cost(self, model: str | None, tokens: TokenCount) -> Cost:
        """The :class:`Cost` of ``tokens`` spent on ``model``."""
        return Cost(model, tokens, self.lookup(model))
