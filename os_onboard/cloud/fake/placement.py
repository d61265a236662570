"""Placement of the fake cloud: allocations per consumer, guarded by generations.

A write names the consumer generation it last read (None: a new consumer);
any other is refused with a 409, as Placement does, and each write bumps the
consumer's generation and those of the providers it touches.
"""

from __future__ import annotations

from collections import Counter

from os_onboard.cloud.fake.core import State, http_error, op


class Placement(State):
    """``allocs``: consumer uuid -> what :meth:`allocations` answers for it."""

    allocs: dict[str, dict]
    provider_generations: dict[str, int]

    def usages(self, provider: str) -> dict[str, int]:
        """What every consumer holds of a provider, by resource class."""
        total: Counter[str] = Counter()
        for consumer in self.allocs.values():
            total.update(consumer["allocations"].get(provider, {}).get("resources", {}))
        return dict(total)

    @op
    def allocations(self, consumer: str) -> dict:
        return self.allocs.get(consumer, {"allocations": {}})

    @op
    def provider_allocations(self, provider: str) -> dict[str, dict]:
        return {consumer: {"resources": dict(a["allocations"][provider]["resources"])}
                for consumer, a in self.allocs.items() if provider in a["allocations"]}

    @op
    def put_allocations(self, consumer: str, provider: str, resources: dict[str, int],
                        project_id: str, user_id: str, generation: int | None) -> None:
        self._check_generation(consumer, generation)
        self._write(consumer, provider, resources, project_id, user_id)

    @op
    def post_allocations(self, consumers: dict[str, dict]) -> None:
        for uuid, c in consumers.items():  # every consumer or none
            self._check_generation(uuid, c["generation"])
        for uuid, c in consumers.items():
            self._write(uuid, c["provider"], c["resources"], c["project_id"], c["user_id"])

    @op
    def delete_allocations(self, consumer: str) -> None:
        for provider in self.allocs.pop(consumer, {"allocations": {}})["allocations"]:
            self._bump(provider)

    def _check_generation(self, consumer: str, generation: int | None) -> None:
        current = self.allocs.get(consumer, {}).get("consumer_generation")
        if current != generation:
            raise http_error(f"allocate {consumer}", 409, "consumer generation conflict - "
                             f"expected {current}, but got {generation}")

    def _write(self, consumer: str, provider: str, resources: dict[str, int],
               project_id: str, user_id: str) -> None:
        old = self.allocs.get(consumer, {"allocations": {}, "consumer_generation": 0})
        for touched in {provider, *old["allocations"]}:
            self._bump(touched)
        self.allocs[consumer] = {
            "allocations": {provider: {"resources": dict(resources),
                                       "generation": self.provider_generations[provider]}},
            "consumer_generation": old["consumer_generation"] + 1,
            "project_id": project_id, "user_id": user_id,
            "consumer_type": old.get("consumer_type", "INSTANCE")}

    def _bump(self, provider: str) -> None:
        self.provider_generations[provider] = self.provider_generations.get(provider, 0) + 1
