"""The job runner on real Postgres: claims across organizations, never works a job twice at once,
retries failures with backoff until they fail for good, and takes up a job whose worker died."""

import asyncio
import uuid

from gateway.jobs.notifications import JobNotifications
from gateway.jobs.runner import JobRunner, PermanentJobError
from tests.gateway.accounts_helpers import eventually


async def new_org(db) -> uuid.UUID:
    org = uuid.uuid4()
    await db.execute("INSERT INTO organizations (id, name) VALUES ($1, 'Acme')", org)
    return org


async def queue(db, org, n=1, kind="probe", **columns) -> list[uuid.UUID]:
    ids = []
    for i in range(n):
        names = ", ".join(["org_id", "kind", "payload", *columns])
        values = ", ".join(f"${k + 1}" for k in range(3 + len(columns)))
        ids.append(await db.fetchval(f"INSERT INTO jobs ({names}) VALUES ({values}) RETURNING id",
                                     org, kind, f'{{"n": {i}}}', *columns.values()))
    return ids


async def statuses(db, ids):
    rows = await db.fetch("SELECT id, status, attempts, last_error FROM jobs WHERE id = any($1::uuid[])", ids)
    return {r["id"]: (r["status"], r["attempts"], r["last_error"]) for r in rows}


async def test_two_workers_run_every_job_exactly_once_across_orgs(db, app_pool):
    orgs = [await new_org(db) for _ in range(3)]
    ids = [job for org in orgs for job in await queue(db, org, n=10)]
    seen: list[uuid.UUID] = []
    running: set[uuid.UUID] = set()
    overlaps = []

    async def handler(context):
        if context.job.id in running:
            overlaps.append(context.job.id)
        running.add(context.job.id)
        await asyncio.sleep(0.01)
        seen.append(context.job.id)
        running.discard(context.job.id)

    async with JobRunner(app_pool, {"probe": handler}, worker_id="a", concurrency=3, poll_s=0.1), \
            JobRunner(app_pool, {"probe": handler}, worker_id="b", concurrency=3, poll_s=0.1):
        async def all_done():
            return all(s == "done" for s, _, _ in (await statuses(db, ids)).values())
        assert await eventually(all_done, timeout=20)
    assert sorted(seen) == sorted(ids) and not overlaps
    assert {a for _, a, _ in (await statuses(db, ids)).values()} == {1}


async def test_a_failing_job_is_retried_with_backoff_then_fails_with_its_error(db, app_pool):
    org = await new_org(db)
    [job] = await queue(db, org, max_attempts=3)
    attempts: list[float] = []

    async def handler(context):
        attempts.append(asyncio.get_running_loop().time())
        raise RuntimeError("the scorer is down")

    async with JobRunner(app_pool, {"probe": handler}, worker_id="a", poll_s=0.05, retry_base_s=0.2):
        async def failed():
            return (await statuses(db, [job]))[job][0] == "failed"
        assert await eventually(failed, timeout=15)
    status, tries, error = (await statuses(db, [job]))[job]
    assert (status, tries, len(attempts)) == ("failed", 3, 3)
    assert error == "RuntimeError: the scorer is down"
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4, gaps  # the backoff doubles


async def test_a_permanent_error_fails_at_once(db, app_pool):
    org = await new_org(db)
    [job] = await queue(db, org)

    async def handler(context):
        raise PermanentJobError("the session no longer exists")

    async with JobRunner(app_pool, {"probe": handler}, worker_id="a", poll_s=0.05):
        async def failed():
            return (await statuses(db, [job]))[job][0] == "failed"
        assert await eventually(failed, timeout=10)
    assert (await statuses(db, [job]))[job] == ("failed", 1, "the session no longer exists")


async def test_a_job_whose_worker_died_is_taken_up_when_its_lease_runs_out(db, app_pool):
    org = await new_org(db)
    [orphan] = await queue(db, org, status="running", attempts=1, locked_by="dead-instance")
    await db.execute("UPDATE jobs SET locked_until = now() + interval '1 second' WHERE id = $1", orphan)
    [spent] = await queue(db, org, status="running", attempts=5, locked_by="dead-instance")
    await db.execute("UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = $1", spent)
    worked: list[uuid.UUID] = []

    async def handler(context):
        worked.append(context.job.id)

    async with JobRunner(app_pool, {"probe": handler}, worker_id="b", poll_s=0.1):
        await asyncio.sleep(0.5)
        assert worked == [], "not while the dead worker's lease holds"

        async def done():
            return (await statuses(db, [orphan]))[orphan][0] == "done"
        assert await eventually(done, timeout=10)
    assert worked == [orphan]
    assert (await statuses(db, [orphan]))[orphan][:2] == ("done", 2)
    status, _, error = (await statuses(db, [spent]))[spent]
    assert status == "failed" and "no attempts left" in error


async def test_a_queued_job_wakes_the_runner_through_notify(db, app_pool):
    org = await new_org(db)
    worked = asyncio.Event()

    async def handler(context):
        worked.set()

    async with JobNotifications(app_pool) as notifications, \
            JobRunner(app_pool, {"probe": handler}, worker_id="a", notifications=notifications, poll_s=30):
        await asyncio.sleep(0.3)  # the runner has looked once and now sleeps (30 s poll)
        await db.execute("BEGIN")
        [job] = await queue(db, org)
        await db.execute("SELECT pg_notify('sparring_jobs', $1)", str(job))
        await db.execute("COMMIT")
        await asyncio.wait_for(worked.wait(), 5)


async def test_only_the_kinds_a_runner_handles_are_claimed(db, app_pool):
    org = await new_org(db)
    [job] = await queue(db, org, kind="other")

    async def handler(context):
        raise AssertionError("claimed a kind it does not handle")

    async with JobRunner(app_pool, {"probe": handler}, worker_id="a", poll_s=0.05):
        await asyncio.sleep(0.4)
    assert (await statuses(db, [job]))[job][0] == "queued"


async def test_a_runner_woken_as_it_stops_still_stops(app_pool):
    """A job finishing (which wakes the claim loop) at the moment the gateway shuts down: on
    Python 3.11, asyncio.wait_for swallowed a cancellation that arrived as the awaited event was
    set, the claim loop went on polling, and shutdown waited for it forever (a gateway that never
    exited on SIGTERM after a busy round)."""
    async def handler(context):
        pass

    runner = JobRunner(app_pool, {"probe": handler}, worker_id="a", poll_s=30)
    await runner.__aenter__()
    await asyncio.sleep(0.2)  # the claim loop has claimed nothing and waits for a wake
    runner.wake()  # set now; the loop would run again on the next turn...
    stopping = asyncio.create_task(runner.__aexit__(None, None, None))  # ...but it is cancelled first
    done, _ = await asyncio.wait([stopping], timeout=5)
    still = [t for t in asyncio.all_tasks() if t.get_name() == "jobs-claim" and not t.done()]
    assert done and not still, "the claim loop went on after it was cancelled"
