"""Alembic environment of the line twin's database.

`defect_twin.twin.migrate(url)` runs it programmatically (passing a connection in `config.attributes`); the Alembic
command line works too: `alembic -c defect_twin/migrations/alembic.ini -x url=sqlite:///line.db upgrade head`."""
from alembic import context
from sqlalchemy import create_engine, pool

config = context.config

def _url():
    return context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")

def run_offline():
    context.configure(url=_url(), literal_binds=True, render_as_batch=True)
    with context.begin_transaction(): context.run_migrations()

def _run(connection):
    context.configure(connection=connection, render_as_batch=True, version_table="twin_alembic_version")
    with context.begin_transaction(): context.run_migrations()

def run_online():
    conn = config.attributes.get("connection")
    if conn is not None: return _run(conn)
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection: _run(connection)
    engine.dispose()

if context.is_offline_mode(): run_offline()
else: run_online()
