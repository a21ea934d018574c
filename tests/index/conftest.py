"""The index's tests: each runs on a migrated SQLite index and on a throwaway PostgreSQL one."""

from __future__ import annotations

import pytest

from childindex.index.db import migrate


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return request.getfixturevalue("settings").index_url
    pg = request.getfixturevalue("pg_url")
    migrate(pg)
    return pg
