"""The ``coachlog`` command line."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import click

from coachlog.bootstrap import bootstrap
from coachlog.seed import seed_firm
from coachlog.settings import Settings, SettingsError
from coachlog.timeline import format_history
from domain.application import Engagements
from domain.errors import DomainError
from domain.lifecycle import EngagementOpened


@click.group()
@click.option(
    "--database-url",
    envvar="COACHLOG_DATABASE_URL",
    default=Settings().database_url,
    show_default=True,
    help="sqlite:///file.db (embedded) or postgresql://user@host:port/dbname.",
)
@click.pass_context
def main(context: click.Context, database_url: str) -> None:
    """coachlog: event-sourced records of career-coaching engagements."""
    context.obj = Settings(database_url=database_url)


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
