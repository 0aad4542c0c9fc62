"""Which resume strategy a stream uses: the names a user may pass
(:func:`check_strategy`), and the choice for the next connection after a cut
(:func:`choose_strategy`). No I/O.
"""

from __future__ import annotations

from ._delivered import Delivered
from .dialects.base import Dialect
from .dialects.profiles import ProviderProfile
from .exceptions import UsageError

__all__ = ["STRATEGIES", "check_strategy", "choose_strategy"]

#: Strategies in the order ``auto`` prefers them.
STRATEGIES = ("cursor", "prefill", "replay")
_NAMES = ("auto", "none", *STRATEGIES)
_DIVERGENCE = ("reset", "raise")


def check_strategy(resume: str, on_divergence: str) -> None:
    """Validate ``resume`` and ``on_divergence`` arguments.

    :raises UsageError: with the accepted values.
    """
    if resume not in _NAMES:
        raise UsageError(f"resume={resume!r} is not a strategy; use one of {', '.join(map(repr, _NAMES))}.")
    if on_divergence not in _DIVERGENCE:
        raise UsageError(f"on_divergence={on_divergence!r} is not supported; use 'reset' or 'raise'.")


def choose_strategy(delivered: Delivered, dialect: Dialect, provider: ProviderProfile, resume: str,
                    refused: set[str], after: str | None = None) -> str:
    """The strategy for the next connection of a stream that delivered
    ``delivered`` and was asked to resume by ``resume``: the first of
    :data:`STRATEGIES` the dialect and the provider support and the server has
    not been caught ignoring (``refused``), ``replay`` at last. ``after``: a
    strategy that just failed, so only those after it qualify; ``retry`` (a
    new request) while nothing was delivered."""
    if not delivered.content_events and (delivered.cursor is None or not dialect.resumes_before_content):
        return "retry"
    state = delivered.state()
    wanted: tuple[str, ...] = STRATEGIES if resume in ("auto", "none") else (resume, *STRATEGIES)
    if after in STRATEGIES:
        wanted = STRATEGIES[STRATEGIES.index(after) + 1:]
    for name in wanted:
        allowed = resume not in ("auto", "none") or name in provider.strategies or name == "replay"
        if allowed and name not in refused and dialect.supports(name, state, provider):
            return name
    return "replay"
