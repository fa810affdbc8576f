"""Every command of an engagement, gathered from the pillar modules.

Each command is a frozen dataclass beside the event it records, in its pillar module
(``domain/sessions.py`` holds ``HoldSession`` beside ``SessionHeld``); this module
offers them all in one place to those who build commands (the API derives its request
schemas from them, the CLI and the seeder run them). The application service loads the
engagement, runs the command's method with the command's fields, and saves. A command's
fields are declared by the event it records (``EVENT``): what the event's field may
hold, the command's field may hold.
"""

from __future__ import annotations

from domain.accountability import *  # noqa: F403
from domain.assessment import *  # noqa: F403
from domain.billing import *  # noqa: F403
from domain.command import Command as Command
from domain.engagement import PILLARS
from domain.goals import *  # noqa: F403
from domain.lifecycle import *  # noqa: F403
from domain.lifecycle import OpenEngagement as OpenEngagement
from domain.outcomes import *  # noqa: F403
from domain.privacy import *  # noqa: F403
from domain.sessions import *  # noqa: F403
from domain.skills import *  # noqa: F403
from domain.support import *  # noqa: F403

#: Every command on an existing engagement, in catalogue order (pillar by pillar, each
#: in the order its module defines them).
ENGAGEMENT_COMMANDS: tuple[type[Command], ...] = tuple(
    value
    for module in PILLARS
    for value in vars(module).values()
    if isinstance(value, type)
    and issubclass(value, Command)
    and value.__module__ == module.__name__
)
