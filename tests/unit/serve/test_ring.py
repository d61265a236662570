"""The hosts partitioned among the live members by consistent hashing."""

from collections import Counter

from os_onboard.coordination.ring import assign, held_by
from os_onboard.coordination.service import backend_url

HOSTS = [f"qemu+ssh://hv{i}.example.com/system" for i in range(2000)]


def test_every_host_has_one_member_and_shares_are_even():
    a = assign(["r1", "r2", "r3"], HOSTS)
    assert set(a) == set(HOSTS) and set(a.values()) == {"r1", "r2", "r3"}
    assert all(500 < n < 830 for n in Counter(a.values()).values())
    assert assign([], HOSTS) == {}


def test_a_join_or_leave_moves_only_that_members_share():
    two, three = assign(["r1", "r2"], HOSTS), assign(["r1", "r2", "r3"], HOSTS)
    moved = [h for h in HOSTS if two[h] != three[h]]
    assert all(three[h] == "r3" for h in moved)  # only onto the new member
    assert len(moved) < len(HOSTS) / 2
    # r3 leaves again: exactly its hosts go back, each to where it was
    assert assign(["r2", "r1"], HOSTS) == two


def test_held_by_is_the_members_part_and_the_parts_cover_everything():
    members = ["a", "b"]
    parts = [set(held_by(m, members, HOSTS)) for m in members]
    assert parts[0].isdisjoint(parts[1]) and parts[0] | parts[1] == set(HOSTS)


def test_backend_url_gets_the_lease_options_unless_given():
    assert backend_url("etcd3+http://127.0.0.1:2379", 7) == (
        "etcd3+http://127.0.0.1:2379?timeout=7&membership_timeout=7&lock_timeout=7")
    assert backend_url("etcd3+http://h:2379?timeout=3", 7) == (
        "etcd3+http://h:2379?timeout=3&membership_timeout=7&lock_timeout=7")
    assert backend_url("redis://h", 7) == "redis://h"
