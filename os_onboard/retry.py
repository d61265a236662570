"""Retry what the error type says may succeed later (``OnboardError.temporary``).

One place for the rule, so ``apply``'s steps and anything else that retries
in place agree: a temporary error (a service down, a lost answer) is tried
again after a growing delay; a permanent one is raised at once, since the
same call would fail the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from os_onboard.exceptions import OnboardError

LOG = logging.getLogger(__name__)
T = TypeVar("T")


def retry_temporary(fn: Callable[[int], T], what: str, attempts: int = 3,
                    first_delay: float = 1.0,
                    sleep: Callable[[float], None] = time.sleep) -> T:
    """``fn(attempt)`` (1, 2, ...) until it returns, at most ``attempts`` times.

    Waits ``first_delay``, then twice that, ... between attempts. A permanent
    :class:`OnboardError` (or the last temporary one) is raised to the caller.
    The attempt number lets ``fn`` know that an earlier try may have written
    before its answer was lost (so it looks its record up first).
    """
    for attempt in range(1, attempts + 1):
        try:
            return fn(attempt)
        except OnboardError as exc:
            if not exc.temporary or attempt == attempts:
                raise
            delay = first_delay * 2 ** (attempt - 1)
            LOG.warning("%s: %s (temporary); attempt %d of %d in %g s", what, exc,
                        attempt + 1, attempts, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # attempts >= 1 returns or raises above
