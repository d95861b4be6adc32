"""The twin on a real PostgreSQL server: migrations, batched idempotent ingest, alarms, rebuild after a restart.

Needs `DEFECT_TWIN_TEST_PG` (a SQLAlchemy URL, e.g. `postgresql+psycopg://twin@127.0.0.1:5432/twin`); `.ci/run` installs
Debian's postgresql, starts a cluster on 127.0.0.1 and sets it. Skipped only where the variable is unset."""
import os, uuid
import pytest
import sqlalchemy as sa
from twin_support import write_line, part, normal_scores

PG = os.environ.get("DEFECT_TWIN_TEST_PG")
pytestmark = pytest.mark.skipif(not PG and not os.environ.get("CI"), reason="DEFECT_TWIN_TEST_PG is not set (see .ci/run)")


@pytest.fixture
def pg_url():
    if not PG: pytest.fail("CI must set DEFECT_TWIN_TEST_PG (a PostgreSQL URL)")
    schema_db = f"twin_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as c: c.exec_driver_sql(f'CREATE DATABASE "{schema_db}"')
    url = PG.rsplit("/", 1)[0] + "/" + schema_db
    yield url
    sa.create_engine(url).dispose()
    with admin.connect() as c: c.exec_driver_sql(f'DROP DATABASE "{schema_db}" WITH (FORCE)')
    admin.dispose()


def test_migrations_and_ingest_on_postgresql(pg_url, tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from defect_twin.twin import Store, Twin, META, migrate
    store = Store(pg_url)
    assert store.dialect == "postgresql" and store.revision == "0001_twin_initial"
    with store.engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c, opts=dict(version_table="twin_alembic_version")), META) == []
    assert migrate(store.engine) == "0001_twin_initial"           # idempotent

    line = write_line(tmp_path)
    tw = Twin(line, store)
    sc = normal_scores(200)
    r = tw.ingest([part(i, sc[i]) for i in range(150)])
    assert (r["accepted"], r["duplicates"]) == (150, 0)
    r = tw.ingest([part(i, sc[i]) for i in range(100, 200)])       # 50 ids again
    assert (r["accepted"], r["duplicates"]) == (50, 50)
    r = tw.ingest([part(i, 14.0) for i in range(200, 260)])        # passed scores up 4 sigma
    assert {"ewma", "cusum"} <= {a["detector"] for a in r["alarms"]}
    assert store.count("cam") == 260

    tw2 = Twin(line, Store(pg_url))                                 # a restart rebuilds the same twin
    assert tw2.snapshot()["stations"] == tw.snapshot()["stations"]
    assert set(tw2.open) == set(tw.open)
    a = tw2.ack(next(iter(tw2.open.values()))["id"], by="pytest", rebaseline=True)
    assert a["acked"] and Store(pg_url).baselines()[0]["station"] == "cam"
