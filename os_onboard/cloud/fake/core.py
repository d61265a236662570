"""What every part of the fake cloud shares: its records, the call log, errors on demand."""

from __future__ import annotations

import copy
import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from os_onboard.exceptions import CloudError, TemporaryCloudError

F = TypeVar("F", bound=Callable[..., Any])

#: The services' words for the statuses a test asks for.
REASONS = {400: "Bad Request", 404: "Not Found", 409: "Conflict",
           500: "Internal Server Error", 503: "Service Unavailable"}


def http_error(what: str, status: int, message: str | None = None) -> CloudError:
    """The error the real adapter raises for an HTTP ``status``: temporary from 500."""
    text = f"{what}: HTTP {status}: {message or REASONS.get(status, 'error')}"
    kind = TemporaryCloudError if status >= 500 else CloudError
    return kind(text, status_code=status)


@dataclass(frozen=True)
class Call:
    """One call of the contract, as made (arguments not copied)."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class _Failure:
    times: int
    status: int | None
    message: str


def op(fn: F) -> F:
    """A call of the contract: logged; refused while the cloud is down or a failure
    is queued for it; its answer lost (after the effect) if asked; the answer
    deep-copied, so callers never hold the fake's records."""
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(self: State, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(name)
        self.log.append(Call(name, args, kwargs))
        self.raise_injected(name)
        answer = fn(self, *args, **kwargs)
        if name in self.lose_answers:
            raise TemporaryCloudError(f"{name}: read timed out")
        return copy.deepcopy(answer)
    return cast(F, wrapper)


class State:
    """The call log and the errors on demand; each service's part adds its records.

    ``calls`` has the name of each call of the contract (and ``helper:<command>``
    / ``cinder:<command>`` for the service-side helpers), ``log`` each call with
    its arguments.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.log: list[Call] = []
        #: every call raises a TemporaryCloudError, as with the services unreachable
        self.down = False
        #: calls whose request takes effect but whose answer is lost (a timeout)
        self.lose_answers: set[str] = set()
        self._failures: dict[str, list[_Failure]] = {}
        self._ids = itertools.count(1)
        #: when the records made now are made (``created_at``); a test may move it
        self.clock = datetime.now(UTC)

    def now(self) -> str:
        """A record's ``created_at``: the fake's clock (:attr:`clock`, UTC), ISO 8601."""
        return self.clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    def new_id(self, kind: str) -> str:
        """A fresh id, never one a test wrote by hand ("net-1", "port-x")."""
        return f"fake-{kind}-{next(self._ids)}"

    def fail(self, method: str, status: int | None = None, times: int = 1,
             message: str = "injected failure") -> None:
        """Make the next ``times`` calls of ``method`` fail, before any effect.

        ``status`` None: a CloudError without status (e.g. a refused request
        the adapter cannot classify); 4xx: a CloudError with that
        ``status_code``; 5xx: a TemporaryCloudError, as the adapter raises.
        """
        self._failures.setdefault(method, []).append(_Failure(times, status, message))

    def raise_injected(self, name: str) -> None:
        if self.down:
            raise TemporaryCloudError(f"{name}: Connection refused")
        queued = self._failures.get(name)
        if not queued:
            return
        failure = queued[0]
        failure.times -= 1
        if failure.times <= 0:
            queued.pop(0)
        if failure.status is None:
            raise CloudError(f"{name}: {failure.message}")
        raise http_error(name, failure.status, failure.message)

    def writes(self) -> list[str]:
        """The calls that write (the helpers' runs included), in order."""
        return [c for c in self.calls if c not in READS]


#: The contract's calls that only read.
READS = frozenset({
    "project_id", "user_id", "current_ids", "hypervisors", "compute_services", "servers",
    "server", "flavors", "image_by_name", "networks", "subnets", "ports", "volume", "volumes",
    "manageable_volumes", "wait_volume", "attachments", "allocations",
    "provider_allocations"})
