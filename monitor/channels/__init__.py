"""The channels a desk is sent to: THE registry, one module per channel.

    email    monitor.channels.email    SMTP, text + HTML (Jinja2 templates), [smtp] table
    slack    monitor.channels.slack    incoming webhook, Block Kit
    webhook  monitor.channels.webhook  signed JSON to any URL
    telegram monitor.channels.telegram Bot API sendMessage, HTML parse mode
    teams    monitor.channels.teams    Workflows webhook, Adaptive Cards

:data:`SPECS` is the one place that lists channels; its order is the order a
desk's channels are set up and tried in. Each module owns its configuration
keys, its frozen options, its rendering, its transport and its error
classification (:class:`~monitor.errors.NotifyError`, ``permanent`` or not,
``retry_after``; :func:`~monitor.channels.base.post` and
:func:`~monitor.channels.base.classify` for HTTP), and ends with its
:class:`~monitor.channels.base.ChannelSpec`. A channel, declared (Slack)::

    @dataclass(frozen=True, slots=True)
    class SlackOptions:                 # what a desk's keys say, typed and frozen
        webhook: Secret

    DESK_KEYS = (Key("slack_webhook", secret, "the webhook's URL", secret=True,
                     field="webhook"),)  # monitor.config_keys.Key: name, parser, help...

    def _options(values):               # {field: value} of the keys the desk gave
        return SlackOptions(**values) if values.get("webhook") else None  # None: unused

    class SlackNotifier:
        channel: ClassVar[str] = "slack"
        def __init__(self, webhook: Secret, *, timeout: float = 15.0) -> None: ...
        @classmethod
        def for_desk(cls, desk, settings, options):  # options: the Deliverer's
            mine = desk.channel_options[cls.channel]
            return cls(mine.webhook, timeout=options.get("timeout", 15.0))
        def send(self, digest: Digest, envelope: Envelope) -> None: ...

    SPEC = ChannelSpec(
        "slack",                        # name: in deliveries, status, alert_channels
        DESK_KEYS,                      # its keys in [[desks]]
        _options,                       # the desk's values -> options, or None
        SlackNotifier.for_desk,         # (desk, settings, options) -> Notifier
        table=None,                     # a top-level Table of its own: email's [smtp]
        cross_check=...,                # (options, table value or None) -> (desk key,
    )                                   #   message) problems; default none

A key's parser (``monitor.config_keys``: ``text``, ``integer``, ``duration``,
``boolean``, ``one_of``, ``str_list``, ``secret``, ``http_url``...) raises
``Invalid(message)``; the reader reports it as ``file:line: desks.NAME.key:
message``. A channel's top-level table (``Table(name, keys, build)``, its
values in ``settings.channel_tables[name]``) suits what all desks share, such
as an API base URL that tests point at loopback.

Adding a channel: one module here, one line in :data:`SPECS`, its docs (README,
docs/delivery.md) and its tests.

Importing a channel module is cheap (the configuration imports them, and a
poll loads the configuration): HTTP, SMTP, JSON, Jinja2 and the digest are
imported when a message is built or sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from monitor.channels import email, slack, teams, telegram, webhook
from monitor.channels.base import ChannelSpec, Envelope, Notifier

if TYPE_CHECKING:
    from monitor.settings import DeskConfig, Settings

__all__ = ["SPECS", "ChannelSpec", "Envelope", "Notifier", "build_notifiers"]

#: Every channel, in the order a desk's channels are tried.
SPECS: tuple[ChannelSpec, ...] = (
    email.SPEC,
    slack.SPEC,
    webhook.SPEC,
    telegram.SPEC,
    teams.SPEC,
)


def build_notifiers(desk: DeskConfig, settings: Settings,
                    options: Mapping[str, Any] | None = None) -> dict[str, Notifier]:
    """The notifiers of the channels ``desk`` configures, by channel name.

    ``options`` (all optional) are the Deliverer's: ``timeout`` for HTTP,
    ``slack_pause`` between the parts of a split Slack message, ``ssl_context``
    for SMTP; each channel reads the ones it knows.
    """
    return {s.name: s.notifier(desk, settings, options or {})
            for s in SPECS if s.name in desk.channel_options}
