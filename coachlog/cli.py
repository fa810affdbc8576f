"""The ``coachlog`` command line."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import click

from api import Services
from api.accounts import AccountError, Accounts
from coachlog.bootstrap import bootstrap, bootstrap_services, database, schema_lock
from coachlog.seed import seed_firm
from coachlog.server import serve as serve_api
from coachlog.settings import Settings, SettingsError
from coachlog.timeline import format_history
from domain.application import Engagements
from domain.audit import Anchoring
from domain.errors import DomainError
from domain.keys import new_master_key
from domain.lifecycle import EngagementOpened
from domain.values import Role, Segment
from projections.rebuild import rebuild
from projections.runner import ProjectionRunner
from projections.store import NAME as PROGRESS
from projections.store import Quarantine
from workers import logs
from workers.export import WRITERS, ExportError, Pseudonymizer, Slice, export
from workers.projector import KafkaProjector
from workers.relay import Relay
from workers.replay import load_fold, outcome_dataset, replay
from workers.settings import KafkaSettings

_log_format_option = click.option(
    "--log-format", type=click.Choice(["json", "text"]), default="json", show_default=True
)


@click.group()
@click.option(
    "--database-url",
    envvar="COACHLOG_DATABASE_URL",
    default=Settings().database_url,
    show_default=True,
    help="sqlite:///file.db (embedded) or postgresql://user@host:port/dbname.",
)
@click.option(
    "--database-schema",
    envvar="COACHLOG_DATABASE_SCHEMA",
    default=None,
    help="PostgreSQL schema for every coachlog table (default: public).",
)
@click.pass_context
def main(context: click.Context, database_url: str, database_schema: str | None) -> None:
    """coachlog: event-sourced records of career-coaching engagements."""
    context.obj = Settings(database_url=database_url, database_schema=database_schema or None)


def _app(context: click.Context) -> Engagements:
    try:
        return bootstrap(context.obj)
    except SettingsError as error:
        raise click.UsageError(str(error)) from None


@main.command()
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed.")
@click.option("--engagements", type=click.IntRange(1, 100_000), default=36, show_default=True)
@click.option("--firm", default="firm-northwind", show_default=True, help="Firm (tenant) id.")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Pretend today is this date (default: now); with --seed this makes runs identical.",
)
@click.pass_context
def seed(
    context: click.Context, seed: int, engagements: int, firm: str, today: datetime | None
) -> None:
    """Generate a realistic firm: coaches, clients and months of engagement history."""
    now = datetime.now(UTC)
    moment = now if today is None else today.replace(hour=18, tzinfo=UTC)
    if moment > now:
        raise click.BadParameter("must not be in the future", param_hint="--today")
    with (
        _app(context) as app,
        click.progressbar(length=engagements, label="Seeding engagements") as bar,
    ):
        report = seed_firm(
            app,
            seed=seed,
            engagements=engagements,
            today=moment,
            firm_id=firm,
            progress=bar.update,
        )
    click.echo(f"Wrote {report.engagements} engagements, {report.events} events, firm {firm}.")
    if report.skipped:
        click.echo(f"Skipped {report.skipped} engagements already in the store (same --seed).")
    click.echo(f"Try: coachlog engagements --firm {firm}; coachlog history --firm {firm} --latest")


@main.command()
@click.option("--firm", default="firm-northwind", show_default=True, help="Firm (tenant) id.")
@click.pass_context
def engagements(context: click.Context, firm: str) -> None:
    """List the firm's engagements, in the order they were opened."""
    with _app(context) as app:
        found = 0
        for event in _opened(app):
            if event.firm_id != firm:
                continue
            found += 1
            click.echo(
                f"{event.originator_id}  {event.occurred_at:%Y-%m-%d}  {event.segment:<20}"
                f" coach {event.coach_id}"
            )
        if not found:
            click.echo(f"No engagements for firm {firm}. Run: coachlog seed", err=True)


def _opened(app: Engagements) -> list[EngagementOpened]:
    """Every EngagementOpened event in log order (reads the notification log)."""
    opened: list[EngagementOpened] = []
    start = 1
    while True:
        page = app.recorder.select_notifications(
            start=start, limit=500, topics=[EngagementOpened.TOPIC]
        )
        if not page:
            return opened
        for item in page:
            event = app.mapper.to_domain_event(item)
            if isinstance(event, EngagementOpened):
                opened.append(event)
        start = page[-1].id + 1


@main.command()
@click.argument("engagement_id", required=False)
@click.option("--firm", default="firm-northwind", show_default=True, help="Firm (tenant) id.")
@click.option("--latest", is_flag=True, help="Show the most recently opened engagement.")
@click.pass_context
def history(context: click.Context, engagement_id: str | None, firm: str, latest: bool) -> None:
    """Print an engagement's full history as a readable timeline."""
    with _app(context) as app:
        if latest:
            mine = [e for e in _opened(app) if e.firm_id == firm]
            if not mine:
                raise click.ClickException(f"no engagements for firm {firm}: run coachlog seed")
            ident = mine[-1].originator_id
        elif engagement_id is None:
            raise click.UsageError("give an ENGAGEMENT_ID or --latest")
        else:
            try:
                ident = UUID(engagement_id)
            except ValueError:
                raise click.BadParameter(
                    f"{engagement_id!r} is not a UUID", param_hint="ENGAGEMENT_ID"
                ) from None
        try:
            entries = app.history(firm, ident)
        except DomainError as error:
            raise click.ClickException(error.message) from None
    click.echo(f"Engagement {ident} ({len(entries)} events)")
    click.echo(format_history(entries))


# -- accounts ---------------------------------------------------------------------------


def _accounts(context: click.Context) -> tuple[Services, Accounts]:
    try:
        services = bootstrap_services(context.obj)
    except SettingsError as error:
        raise click.UsageError(str(error)) from None
    return services, services.accounts


@main.group()
def firms() -> None:
    """Manage firms (tenants)."""


@firms.command("create")
@click.argument("firm_id")
@click.option("--name", default="", help="Display name.")
@click.pass_context
def firms_create(context: click.Context, firm_id: str, name: str) -> None:
    """Create a firm."""
    services, accounts = _accounts(context)
    try:
        accounts.create_firm(firm_id, name)
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    finally:
        services.close()
    click.echo(f"Created firm {firm_id}.")


@main.group()
def users() -> None:
    """Manage users of a firm."""


@users.command("create")
@click.argument("user_id")
@click.option("--firm", required=True, help="Firm id.")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in Role if r is not Role.SYSTEM]),
)
@click.option("--name", default="", help="Display name.")
@click.pass_context
def users_create(context: click.Context, user_id: str, firm: str, role: str, name: str) -> None:
    """Add a user with a role to a firm."""
    services, accounts = _accounts(context)
    try:
        accounts.create_user(firm, user_id, role, name)
    except (AccountError, DomainError) as error:
        raise click.ClickException(str(error)) from None
    finally:
        services.close()
    click.echo(f"Created {role} {user_id} in firm {firm}.")


@main.group()
def tokens() -> None:
    """Issue and revoke API tokens."""


@tokens.command("create")
@click.argument("user_id")
@click.option("--firm", required=True, help="Firm id.")
@click.pass_context
def tokens_create(context: click.Context, user_id: str, firm: str) -> None:
    """Issue a bearer token for a user; it is shown once and stored only as a hash."""
    services, accounts = _accounts(context)
    try:
        token = accounts.issue_token(firm, user_id)
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    finally:
        services.close()
    click.echo(token)


@tokens.command("revoke")
@click.argument("token_or_prefix")
@click.pass_context
def tokens_revoke(context: click.Context, token_or_prefix: str) -> None:
    """Revoke a token (given whole, or by the 10-character prefix shown when listing)."""
    services, accounts = _accounts(context)
    try:
        count = accounts.revoke_token(token_or_prefix)
    finally:
        services.close()
    if count == 0:
        raise click.ClickException("no active token matches")
    click.echo(f"Revoked {count} token(s).")


# -- audit and keys ---------------------------------------------------------------------


@main.group()
def audit() -> None:
    """Verify the tamper-evident history, and anchor it."""


@audit.command("verify")
@click.argument("engagement", required=False, type=click.UUID)
@click.option(
    "--expect-digest",
    default=None,
    help="The latest anchor digest as recorded outside coachlog; it must match.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def audit_verify(
    context: click.Context, engagement: UUID | None, expect_digest: str | None, as_json: bool
) -> None:
    """Recompute hash chains (one ENGAGEMENT, or all) and check every anchor.

    Exits 0 when the history is intact, 1 when something was changed, removed or cut
    off (each break names its engagement, the first version affected and the problem).
    """
    app = _app(context)
    try:
        if engagement is None:
            report = app.auditor.verify(expect_digest)
        else:
            report = app.auditor.verify_engagement(engagement, expect_digest)
    finally:
        app.close()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(
            f"{report.events} events in {report.engagements} engagement(s) checked against "
            f"{report.anchors} anchor(s)"
            + (f"; latest digest {report.digest}" if report.digest else "")
        )
        if report.ok:
            click.echo("OK: every chain and anchor verifies.")
        for item in report.breaks:
            where = (
                f"engagement {item.engagement_id} v{item.version}"
                if item.engagement_id
                else (f"anchor {item.version}")
            )
            click.echo(f"BROKEN {where}: {item.problem}: {item.detail}")
    if not report.ok:
        context.exit(1)


@audit.command("anchor")
@click.option(
    "--every",
    type=click.FloatRange(min=1),
    default=None,
    help="Keep anchoring every this many seconds until SIGTERM (default: once).",
)
@_log_format_option
@click.pass_context
def audit_anchor(context: click.Context, every: float | None, log_format: str) -> None:
    """Record the heads of every chain that moved, with a running digest."""
    app = _app(context)
    try:
        if every is None:
            anchor = app.auditor.anchor()
            if anchor is None:
                click.echo("Nothing new to anchor.")
            else:
                click.echo(
                    f"Anchor {anchor.seq} at position {anchor.position}: "
                    f"{len(anchor.heads)} chain head(s); digest {anchor.digest}"
                )
            return
        logs.configure(fmt=log_format)
        loop = Anchoring(app.auditor, every)
        _run_until_signalled(loop.run_forever, loop.stop)
    finally:
        app.close()


@main.group()
def keys() -> None:
    """Master key for the per-client data keys."""


@keys.command("new-master")
def keys_new_master() -> None:
    """Print a fresh master key for COACHLOG_MASTER_KEY (keep it in your secret store)."""
    click.echo(new_master_key())


# -- serve ------------------------------------------------------------------------------

DEMO_FIRM = "firm-northwind"
DEMO_ADMIN = "admin-demo"


def _prepare_demo(context: click.Context) -> str:
    """Seed the demo firm (once) and return a fresh firm-admin token for it."""
    services, accounts = _accounts(context)
    try:
        if not accounts.firm_exists(DEMO_FIRM):
            accounts.create_firm(DEMO_FIRM, "Northwind Careers (demo)")
            accounts.create_user(DEMO_FIRM, DEMO_ADMIN, "firm_admin", "Demo administrator")
            with click.progressbar(length=36, label="Seeding the demo firm") as bar:
                seed_firm(
                    services.engagements, engagements=36, firm_id=DEMO_FIRM, progress=bar.update
                )
        return accounts.issue_token(DEMO_FIRM, DEMO_ADMIN)
    finally:
        services.close()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="gunicorn workers (default: 1 on SQLite, more on PostgreSQL).",
)
@click.option("--demo", is_flag=True, help="Seed a demo firm first and print a token for it.")
@click.option(
    "--projections/--no-projections",
    default=None,
    help="Run the read-model projections in-process (default: on SQLite only).",
)
@click.pass_context
def serve(
    context: click.Context,
    host: str,
    port: int,
    workers: int | None,
    demo: bool,
    projections: bool | None,
) -> None:
    """Serve the HTTP API (docs at /docs) under gunicorn."""
    settings: Settings = context.obj
    if workers and workers > 1 and not settings.is_postgres:
        raise click.BadParameter("SQLite serves from one process", param_hint="--workers")
    if demo:
        token = _prepare_demo(context)
        click.echo("")
        click.echo(f"Demo firm {DEMO_FIRM}; firm-admin token (shown once):")
        click.echo(f"  {token}")
        click.echo(f"Dashboards: open http://{host}:{port}/ and sign in with the token.")
        click.echo(f"API: open http://{host}:{port}/docs, click Authorize and paste the token, or:")
        click.echo(
            f"  curl -H 'Authorization: Bearer {token}' http://{host}:{port}/engagements/..."
        )
        click.echo("")
    serve_api(settings, host, port, workers, projections)


# -- export, study and replay -------------------------------------------------------------

FULL_FORM_ROLES = ("firm_admin", "auditor")


def _slice_options(function: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--firm", default=None, help="Only this firm."),
        click.option("--occurred-from", type=click.DateTime(), default=None),
        click.option("--occurred-to", type=click.DateTime(), default=None),
        click.option("--recorded-from", type=click.DateTime(), default=None),
        click.option("--recorded-to", type=click.DateTime(), default=None),
        click.option("--type", "event_types", multiple=True, help="Event type (repeatable)."),
        click.option(
            "--segment",
            type=click.Choice([s.value for s in Segment]),
            default=None,
            help="Only engagements of this client segment.",
        ),
        click.option("--upto", type=click.IntRange(0), default=None, help="Stop at this position."),
        click.option(
            "--full",
            is_flag=True,
            help="The full form (real ids, free text): needs --token of a firm admin or auditor.",
        ),
        click.option("--token", default=None, help="Bearer token proving the role for --full."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=moment.tzinfo or UTC)


def _slice_and_form(services: Services, **kw: Any) -> tuple[Slice, Pseudonymizer | None]:
    part = Slice(
        firm_id=kw["firm"],
        occurred_from=_utc(kw["occurred_from"]),
        occurred_to=_utc(kw["occurred_to"]),
        recorded_from=_utc(kw["recorded_from"]),
        recorded_to=_utc(kw["recorded_to"]),
        event_types=frozenset(kw["event_types"]),
        segment=kw["segment"],
        upto=kw["upto"],
    )
    if not kw["full"]:
        try:
            return part, Pseudonymizer.from_env()
        except ExportError as error:
            raise click.UsageError(str(error)) from None
    principal = services.accounts.authenticate(kw["token"] or "")
    if principal is None or principal.role not in FULL_FORM_ROLES:
        raise click.UsageError("--full needs --token of a firm admin or an auditor")
    if kw["firm"] not in (None, principal.firm_id):
        raise click.UsageError("--full is limited to the token's own firm")
    return replace(part, firm_id=principal.firm_id), None


@main.command("export")
@click.option("--format", "fmt", type=click.Choice(sorted(WRITERS)), default="jsonl")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), required=True)
@_slice_options
@click.pass_context
def export_command(context: click.Context, /, fmt: str, output: str, **kw: Any) -> None:
    """Export the log (or a slice) to JSONL, CSV or Parquet; pseudonymized by default."""
    services, _ = _accounts(context)
    try:
        part, pseudonymizer = _slice_and_form(services, **kw)
        total = services.engagements.recorder.max_notification_id() or 0
        with (
            open(output, "wb") as out,
            click.progressbar(length=total, label=f"Exporting {fmt}") as bar,
        ):
            count = export(services.engagements, out, fmt, part, pseudonymizer, bar.update)
    finally:
        services.close()
    form = "full" if pseudonymizer is None else "pseudonymized"
    click.echo(f"Wrote {count} events ({form}) to {output}.")


@main.command()
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    required=True,
    help="A .parquet or .csv file.",
)
@_slice_options
@click.pass_context
def study(context: click.Context, /, output: str, **kw: Any) -> None:
    """Write the outcome-study dataset: one row per engagement, features and outcomes."""
    services, _ = _accounts(context)
    try:
        part, pseudonymizer = _slice_and_form(services, **kw)
        frame = outcome_dataset(services.engagements, part=part, pseudonymizer=pseudonymizer)
    finally:
        services.close()
    if output.endswith(".parquet"):
        frame.to_parquet(output, index=False)
    elif output.endswith(".csv"):
        frame.to_csv(output, index=False)
    else:
        raise click.BadParameter("must end in .parquet or .csv", param_hint="--output")
    click.echo(f"Wrote {len(frame)} engagements to {output}.")


@main.command("replay")
@click.option("--fold", "fold_spec", required=True, help="package.module:function")
@_slice_options
@click.pass_context
def replay_command(context: click.Context, /, fold_spec: str, **kw: Any) -> None:
    """Run your own fold(state, event) over the log at a consistent position; print JSON."""
    try:
        user_fold = load_fold(fold_spec)
    except (ImportError, ValueError) as error:
        raise click.BadParameter(str(error), param_hint="--fold") from None
    services, _ = _accounts(context)
    try:
        part, pseudonymizer = _slice_and_form(services, **kw)
        result = replay(services.engagements, user_fold, part=part, pseudonymizer=pseudonymizer)
    finally:
        services.close()
    click.echo(
        json.dumps(
            {"position": result.position, "events": result.events, "state": result.state},
            default=str,
            indent=2,
            sort_keys=True,
        )
    )


@main.command()
@click.pass_context
def migrate(context: click.Context) -> None:
    """Create every table coachlog needs (idempotent); run once before the services."""
    services, _ = _accounts(context)
    services.close()
    click.echo("Schema ready.")


# -- projections ------------------------------------------------------------------------


@main.group("projections")
def projections_group() -> None:
    """Manage read models."""


@projections_group.command("rebuild")
@click.argument("name", type=click.Choice([PROGRESS]))
@click.option("--no-switch", is_flag=True, help="Build and compare, but keep the live one.")
@click.pass_context
def projections_rebuild(context: click.Context, name: str, no_switch: bool) -> None:
    """Rebuild a read model from the event store beside the live one, compare, switch."""
    services, _ = _accounts(context)
    try:
        total = services.engagements.recorder.max_notification_id() or 0
        with click.progressbar(length=total, label=f"Rebuilding {name}") as bar:
            report = rebuild(
                services.engagements, services.progress, switch=not no_switch, progress=bar.update
            )
    finally:
        services.close()
    verb = "Resumed" if report.resumed else "Built"
    click.echo(
        f"{verb} generation {report.new_generation} at position {report.position} "
        f"({report.events_folded} events folded now)."
    )
    if report.differences:
        click.echo(
            f"{len(report.differences)} difference(s) from generation {report.old_generation}:"
        )
        for line in report.differences:
            click.echo(f"  {line}")
    else:
        click.echo(f"No differences from generation {report.old_generation}.")
    if report.switched:
        click.echo(
            f"Readers now use generation {report.new_generation}; "
            f"generation {report.old_generation} was dropped."
        )
    _echo_quarantined(report.quarantined)


def _echo_quarantined(entries: list[Quarantine]) -> None:
    if not entries:
        return
    click.echo(f"{len(entries)} engagement(s) in quarantine (their documents stopped):")
    for entry in entries:
        click.echo(f"  {entry.engagement_id}: {entry.describe()}")
    click.echo("After a fix, `coachlog projections retry` folds them again from the store.")


@projections_group.command("retry")
@click.argument("engagement_ids", nargs=-1)
@click.pass_context
def projections_retry(context: click.Context, engagement_ids: tuple[str, ...]) -> None:
    """Fold quarantined engagements again from the event store (all, or those named);
    exit 1 if any still fails."""
    services, _ = _accounts(context)
    try:
        released, still = services.progress.retry(only=engagement_ids)
    finally:
        services.close()
    for engagement_id in released:
        click.echo(f"{engagement_id}: folded again, released from quarantine")
    if not released and not still:
        click.echo("No engagement in quarantine.")
    _echo_quarantined(still)
    if still:
        raise SystemExit(1)


def _run_until_signalled(start: Callable[[], object], stop: Callable[[], object]) -> None:
    """Run a worker loop in a thread until SIGTERM or SIGINT, then stop it cleanly."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker = threading.Thread(target=start, name="worker")
    worker.start()
    while not stopping.is_set() and worker.is_alive():
        stopping.wait(0.5)
    stop()
    worker.join(timeout=30)


_log_format = _log_format_option


@main.command()
@click.option(
    "--source",
    type=click.Choice(["kafka", "store"]),
    default="store",
    show_default=True,
    help="Consume the Kafka topic (production) or follow the event store directly.",
)
@_log_format
@click.pass_context
def project(context: click.Context, source: str, log_format: str) -> None:
    """Run the read-model projections as a process of their own, until SIGTERM."""
    logs.configure(fmt=log_format)
    services, _ = _accounts(context)
    worker: KafkaProjector | ProjectionRunner
    if source == "kafka":
        worker = KafkaProjector(services.engagements, services.progress, KafkaSettings.from_env())
    else:
        worker = ProjectionRunner(services.engagements, services.progress)
    logging.getLogger("coachlog.projector").info("projecting from the %s", source)
    try:
        _run_until_signalled(worker.run_forever, worker.stop)
    finally:
        services.close()
    logging.getLogger("coachlog.projector").info("stopped")


@main.command()
@_log_format
@click.pass_context
def relay(context: click.Context, log_format: str) -> None:
    """Publish the event log to Kafka (at least once, in order), until SIGTERM.

    Needs no master key: it never opens a sealed field (messages carry the stored
    ciphertext as it is)."""
    logs.configure(fmt=log_format)
    try:
        engagements = bootstrap(context.obj, keyless=True)
        db = database(context.obj)
    except SettingsError as error:
        raise click.UsageError(str(error)) from None
    worker = Relay(engagements, db, KafkaSettings.from_env())
    with schema_lock(context.obj):
        worker.create_tables()
    logging.getLogger("coachlog.relay").info("relaying to %s", worker.settings.topic)
    try:
        _run_until_signalled(worker.run_forever, worker.stop)
    finally:
        engagements.close()
        db.close()
    logging.getLogger("coachlog.relay").info("stopped at position %d", worker.position())
