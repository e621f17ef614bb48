"""Group commit per call (gateway/vapi/batches.py): what arrives while a call's batch runs goes
together in the next one, in order; other calls never wait; one item's failure is its own."""

import asyncio

import pytest

from gateway.vapi.batches import Batches


class Recorder:
    def __init__(self) -> None:
        self.batches: list[tuple[str, list[str]]] = []
        self.release = asyncio.Event()

    async def run(self, key: str, items: list[str]) -> list[BaseException | None]:
        self.batches.append((key, items))
        if key == "slow":
            await self.release.wait()
        return [ValueError(item) if item.startswith("bad") else None for item in items]


async def test_what_arrives_while_a_calls_batch_runs_goes_together_in_the_next_in_order():
    recorder = Recorder()
    batches = Batches(recorder.run)
    first = asyncio.create_task(batches.submit("slow", "a"))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(batches.submit("slow", item)) for item in ("b", "c", "d")]
    other = asyncio.create_task(batches.submit("quick", "x"))
    await asyncio.wait_for(other, 1)  # another call never waits for this one's batch
    assert not first.done()
    recorder.release.set()
    await asyncio.wait_for(asyncio.gather(first, *rest), 1)
    assert recorder.batches == [("slow", ["a"]), ("quick", ["x"]), ("slow", ["b", "c", "d"])]


async def test_one_items_failure_fails_only_that_item_and_a_waiter_that_hangs_up_cancels_nothing():
    recorder = Recorder()
    batches = Batches(recorder.run)
    first = asyncio.create_task(batches.submit("slow", "a"))
    await asyncio.sleep(0)
    bad = asyncio.create_task(batches.submit("slow", "bad-1"))
    good = asyncio.create_task(batches.submit("slow", "b"))
    gone = asyncio.create_task(batches.submit("slow", "c"))
    await asyncio.sleep(0)
    gone.cancel()
    recorder.release.set()
    await asyncio.wait_for(asyncio.gather(first, good), 1)
    with pytest.raises(ValueError, match="bad-1"):
        await bad
    assert recorder.batches[-1] == ("slow", ["bad-1", "b", "c"]), "the hung-up waiter's item was still applied"


async def test_a_run_that_raises_fails_its_whole_batch_and_the_next_batch_still_runs():
    calls: list[list[str]] = []

    async def run(key: str, items: list[str]) -> list[BaseException | None]:
        calls.append(items)
        if items == ["boom"]:
            raise RuntimeError("down")
        return [None] * len(items)

    batches = Batches(run)
    with pytest.raises(RuntimeError, match="down"):
        await batches.submit("k", "boom")
    await asyncio.wait_for(batches.submit("k", "fine"), 1)
    assert calls == [["boom"], ["fine"]]
