"""The service's jobs table: one replica claims a job, a stale one is taken over."""

import time

import pytest

from os_onboard.state import StateStore
from os_onboard.state.jobs import JobState, JobStore


@pytest.fixture
def jobs(tmp_path):
    return JobStore(StateStore(f"sqlite:///{tmp_path}/s.db"))


def test_a_job_is_claimed_once_and_finished_by_its_owner(jobs):
    job = jobs.create("discover", {"hosts": ["a"]}, created_by="admin")
    assert job.state is JobState.QUEUED
    got = jobs.claim("r1", stale_after=30)
    assert got.id == job.id and got.state is JobState.RUNNING and got.owner == "r1"
    assert jobs.claim("r2", stale_after=30) is None
    assert jobs.beat(job.id, "r1", {"done": 1, "total": 2})
    assert not jobs.beat(job.id, "r2", {"done": 2})
    assert not jobs.finish(job.id, "r2", JobState.SUCCEEDED)
    assert jobs.finish(job.id, "r1", JobState.SUCCEEDED, {"snapshot": 3})
    done = jobs.get(job.id)
    assert (done.state, done.result, done.progress) == (JobState.SUCCEEDED, {"snapshot": 3},
                                                        {"done": 1, "total": 2})


def test_a_job_whose_runner_stopped_beating_is_taken_over(jobs):
    job = jobs.create("discover", {})
    jobs.claim("r1", stale_after=30)
    assert jobs.claim("r2", stale_after=30) is None
    time.sleep(0.05)
    again = jobs.claim("r2", stale_after=0.01)
    assert again.id == job.id and again.owner == "r2" and again.attempts == 2
    assert not jobs.beat(job.id, "r1")  # the old runner, if alive, learns it lost the job


def test_cancel_and_pagination(jobs):
    ids = [jobs.create("discover", {"n": i}).id for i in range(5)]
    assert jobs.cancel(ids[0]).state is JobState.CANCELLED
    running = jobs.claim("r1", stale_after=30)
    assert running.id == ids[1]
    cancelled = jobs.cancel(ids[1])
    assert cancelled.state is JobState.RUNNING and cancelled.cancel_requested
    assert jobs.cancel("nope") is None
    page1 = jobs.list(limit=2)
    page2 = jobs.list(limit=2, marker=page1[-1].id)
    page3 = jobs.list(limit=2, marker=page2[-1].id)
    assert [j.id for j in page1 + page2 + page3] == ids[::-1]
    assert [j.id for j in jobs.list(state="cancelled")] == [ids[0]]


def test_items_are_kept_per_key_and_dropped(jobs):
    job = jobs.create("discover", {})
    jobs.save_items(job.id, {"a": "1", "b": "2"})
    jobs.save_items(job.id, {"b": "3"})
    other = jobs.create("discover", {})
    jobs.save_items(other.id, {"a": "x"})
    assert jobs.items(job.id) == {"a": "1", "b": "3"}
    jobs.drop_items(job.id)
    assert jobs.items(job.id) == {} and jobs.items(other.id) == {"a": "x"}
