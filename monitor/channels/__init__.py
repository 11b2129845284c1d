"""The channels a desk is sent to: THE registry, one module per channel.

    email    monitor.channels.email    SMTP, text + HTML (Jinja2 templates), [smtp] table
    slack    monitor.channels.slack    incoming webhook, Block Kit
    webhook  monitor.channels.webhook  signed JSON to any URL

:data:`SPECS` is the one place that lists channels; its order is the order a
desk's channels are set up and tried in. Each module owns its configuration
keys, its frozen options, its rendering, its transport and its error
classification, and ends with its declaration::

    SPEC = ChannelSpec(
        "slack",                    # name: in status, deliveries and alert_channels
        DESK_KEYS,                  # tuple of monitor.settings.Key: its [[desks]] keys
        _options,                   # {field: value} of the keys a desk gives -> the
                                    #   channel's frozen options, or None (not used)
        SlackNotifier.for_desk,     # (desk, settings, options) -> Notifier
        table=None,                 # a top-level Table of its own (email: [smtp])
        cross_check=_no_checks,     # (options, table value or None) -> (key, message)s
    )

A notifier has ``channel: ClassVar[str]`` and ``send(digest, envelope)``
(:class:`monitor.channels.base.Notifier`); it finds its options in
``desk.channel_options[name]``. Adding a channel: one module here, one line in
:data:`SPECS`, its docs (README, docs/delivery.md) and its tests.

Importing a channel module is cheap (the configuration imports them, and a
poll loads the configuration): HTTP, SMTP, JSON, Jinja2 and the digest are
imported when a message is built or sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from monitor.channels import email, slack, webhook
from monitor.channels.base import ChannelSpec, Envelope, Notifier

if TYPE_CHECKING:
    from monitor.settings import DeskConfig, Settings

__all__ = ["SPECS", "ChannelSpec", "Envelope", "Notifier", "build_notifiers", "spec"]

#: Every channel, in the order a desk's channels are tried.
SPECS: tuple[ChannelSpec, ...] = (
    email.SPEC,
    slack.SPEC,
    webhook.SPEC,
)


def spec(name: str) -> ChannelSpec:
    """The channel called ``name``. Raises KeyError."""
    for s in SPECS:
        if s.name == name:
            return s
    raise KeyError(name)


def build_notifiers(desk: DeskConfig, settings: Settings,
                    options: Mapping[str, Any] | None = None) -> dict[str, Notifier]:
    """The notifiers of the channels ``desk`` configures, by channel name.

    ``options`` (all optional) are the Deliverer's: ``timeout`` for HTTP,
    ``slack_pause`` between the parts of a split Slack message, ``ssl_context``
    for SMTP; each channel reads the ones it knows.
    """
    return {s.name: s.notifier(desk, settings, options or {})
            for s in SPECS if s.name in desk.channel_options}
