"""``segue db``: the state store's schema, migrated on its own.

Every service migrates the store when it opens it; ``segue db upgrade`` does
only that and exits, so a deployment can migrate once before its services
start (the Helm chart's pre-install/pre-upgrade Job runs it).
"""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.common import DatabaseOpt, settings_from
from orchestrator.cli.output import EXIT_FAILED, fail, out, print_json

app = typer.Typer(help="The state store's schema.", no_args_is_help=True)

RevisionOpt = Annotated[
    str, typer.Option("--revision", help="Alembic revision to migrate to", show_default=True)
]
JsonOutOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]


@app.command("upgrade")
def upgrade(
    database_url: DatabaseOpt = None, revision: RevisionOpt = "head", json_: JsonOutOpt = False
) -> None:
    """Migrate the state store to the latest schema (or --revision), then exit.

    Safe to run while services run and from several places at once: upgrades of
    one database are serialised, and an up-to-date database is left alone.
    Exit 0 when migrated, 1 when the database is unreachable or the migration fails.
    """
    from orchestrator.store import DEFAULT_SQLITE_NAME, StoreError
    from orchestrator.store.sql import Retry, make_engine
    from orchestrator.store.sql import upgrade as migrate
    from orchestrator.store.sql.connection import current_revision, sqlite_url

    settings = settings_from(None, database_url)
    url = settings.database_url
    if not url:
        settings.home.mkdir(parents=True, exist_ok=True)
        url = sqlite_url(settings.home / DEFAULT_SQLITE_NAME)
    try:
        engine = make_engine(url)
    except StoreError as exc:
        fail(f"{exc}\nCheck SEGUE_DATABASE_URL or --database-url.", EXIT_FAILED)
    where = engine.url.render_as_string(hide_password=True)
    try:
        retry = Retry(attempts=8, wait_s=0.5, max_wait_s=5.0)
        before = retry(f"reading the schema revision of {where}", lambda: current_revision(engine))
        retry(f"migrating the store at {where}", lambda: migrate(engine, revision))
        after = current_revision(engine)
    except StoreError as exc:
        fail(str(exc), EXIT_FAILED)
    finally:
        engine.dispose()
    if json_:
        print_json({"database": where, "from": before, "to": after})
    elif before == after:
        out.print(f"{where}: schema at revision {after}, nothing to do")
    else:
        out.print(f"{where}: schema migrated from revision {before or '(empty)'} to {after}")
