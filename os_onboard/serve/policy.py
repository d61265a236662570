"""oslo.policy defaults: reads need ``reader``, writes need ``admin``.

Every route names one rule (:mod:`.routes`); the rules are registered here
with defaults an operator may override in ``policy.yaml`` ([oslo_policy]
policy_file). Keystone's implied roles put ``reader`` in a ``member`` or
``admin`` token, so a member reads and only an admin writes.
"""

from __future__ import annotations

from typing import Any

from oslo_policy import policy

READER = "os_onboard:reader"
ADMIN = "os_onboard:admin"

BASE_RULES = [
    policy.RuleDefault(READER, "role:reader or role:admin",
                       description="reads the service's data"),
    policy.RuleDefault(ADMIN, "role:admin", description="changes anything"),
]


def rules(routes: list[Any]) -> list[policy.RuleDefault]:
    """One documented rule per route, defaulting to reader (GET) or admin."""
    out: dict[str, policy.DocumentedRuleDefault] = {}
    for route in routes:
        if route.rule is None or route.rule in out:
            continue
        reads = route.method == "GET" or getattr(route, "reads", False)
        check = f"rule:{READER}" if reads else f"rule:{ADMIN}"
        out[route.rule] = policy.DocumentedRuleDefault(
            route.rule, check, route.summary,
            [{"method": route.method, "path": route.path}])
    return [*BASE_RULES, *out.values()]


class Policy:
    """The enforcer, loaded once per process."""

    def __init__(self, conf: Any, routes: list[Any]) -> None:
        self._enforcer = policy.Enforcer(conf)
        self._enforcer.register_defaults(rules(routes))

    def allowed(self, rule: str, credentials: dict[str, Any]) -> bool:
        return bool(self._enforcer.enforce(rule, {}, credentials, do_raise=False))
