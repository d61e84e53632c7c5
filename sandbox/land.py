"""Reference land registry (cơ sở dữ liệu đất đai): parcels, certificates, holders, mortgages.

Unlike the population and business sandboxes it is not an HTTP service but a relational
database the gateway reads with its `sql` connector (`sandbox/manifests/land.yaml`):
``build(settings)`` derives the registry from the synthetic population, ``write_sqlite``
writes it to a SQLite file (``python -m sandbox land --database PATH``) and
``write_postgres`` to a PostgreSQL schema.
"""

from sandbox._land import (
    FORMAT,
    LAND_USES,
    MORTGAGE,
    ORGANISATION,
    PERSON,
    TABLES,
    LandRegistry,
    build,
    columns,
    ddl,
    holders_of,
    made_from,
    stored_settings,
    write_postgres,
    write_sqlite,
)

__all__ = [
    "FORMAT",
    "LAND_USES",
    "MORTGAGE",
    "ORGANISATION",
    "PERSON",
    "TABLES",
    "LandRegistry",
    "build",
    "columns",
    "ddl",
    "holders_of",
    "made_from",
    "stored_settings",
    "write_postgres",
    "write_sqlite",
]
