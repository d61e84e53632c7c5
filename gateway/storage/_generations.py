"""Generations: one-row counters that rise with every change of what they stand for.

Replicas keep things in memory (the connectors in use, the client registry) and read
the generation to know when to build or read them again. A change raises it in its
own transaction, so no reader sees the change without the new generation.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["raise_generation", "read_generation"]


async def raise_generation(conn: AsyncConnection, table: sa.Table) -> int:
    """Raise `table`'s generation in the caller's transaction; returns the new one."""
    await conn.execute(
        table.update().where(table.c.id == 1).values(generation=table.c.generation + 1)
    )
    generation: int = (
        await conn.execute(sa.select(table.c.generation).where(table.c.id == 1))
    ).scalar_one()
    return generation


async def read_generation(engine: AsyncEngine, table: sa.Table) -> int:
    """`table`'s generation now (0 before any change)."""
    async with engine.connect() as conn:
        value = await conn.scalar(sa.select(table.c.generation).where(table.c.id == 1))
    return int(value or 0)
