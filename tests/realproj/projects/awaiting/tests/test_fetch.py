import asyncio

from net.fetch import fetch


def test_fetch():
    assert asyncio.run(fetch(2)) == 4
