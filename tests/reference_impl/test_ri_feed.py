"""LiveFeed (reference_impl/feed.py): what a live reader of one attempt gets."""

from __future__ import annotations

import asyncio

from reference_impl.feed import LiveFeed


def ev(n: int, type_: str = "delta") -> dict:
    return {"type": type_, "seq": n}


async def collect(feed: LiveFeed, after: int = -1) -> list[int]:
    return [e["seq"] async for e in feed.subscribe(after)]


def test_a_reader_gets_published_then_live_events_after_its_cursor_and_ends_at_the_terminal() -> None:
    async def main() -> list[int]:
        feed = LiveFeed("seq", frozenset({"done"}))
        for n in range(3):
            feed.publish(ev(n))
        reader = asyncio.ensure_future(collect(feed, after=0))
        await asyncio.sleep(0)  # one loop turn: the reader usually waits now (the result is the same if not)
        feed.publish(ev(3))
        feed.publish(ev(4, "done"))
        feed.publish(ev(5))  # after the terminal: never sent
        return await asyncio.wait_for(reader, 5)

    assert asyncio.run(main()) == [1, 2, 3, 4]


def test_close_ends_every_reader_without_a_terminal() -> None:
    async def main() -> list[int]:
        feed = LiveFeed("seq", frozenset({"done"}))
        feed.publish(ev(0))
        reader = asyncio.ensure_future(collect(feed))
        await asyncio.sleep(0)  # one loop turn (the result does not depend on it)
        feed.close()
        return await asyncio.wait_for(reader, 5)

    assert asyncio.run(main()) == [0]
