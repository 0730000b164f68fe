import asyncio


async def fetch(value):
    await asyncio.sleep(0)
    return value * 2
