"""Dagster's run-sharded SQLite event log, keeping its database engines.

The stock `SqliteEventLogStorage` builds a SQLAlchemy engine for every event it stores and
disposes of it afterwards: about 10 ms an event on this machine (300 materializations: 3.2 s),
and a run of the sample store stores about 600 events (planned and done materializations,
check results, step events), a first run over a year of daily partitions several thousand (the
UCI Online Retail store: 3,000 materializations, a third of its run). This subclass keeps an
engine, with its pooled connection, for the index and the most recently used runs' database
files: 2.4 ms an event. Same files, layout and lock (`_db_lock`) as the stock class, which reads
what this one writes and the other way round. dagster.yaml.template configures it; it overrides
`_connect`, a private method: check it on a Dagster upgrade (`requirements.lock` pins it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

KEPT_ENGINES = 8  # the index, and the runs a process writes or the UI shows


class SegmentaSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` with one engine kept per database file (at most KEPT_ENGINES)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()  # least recently used first
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: Mapping[str, Any]) -> SegmentaSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.pop(shard, None) or create_engine(
                self.conn_string_for_shard(shard),
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
            self._engines[shard] = engine
            while len(self._engines) > KEPT_ENGINES:
                self._engines.popitem(last=False)[1].dispose()
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _dispose_engines(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        self._dispose_engines()  # before the run files are deleted
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()
