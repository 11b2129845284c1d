"""The channels a desk is sent to: a registry of notifier classes, one module each.

    email    monitor.notify.email.EmailNotifier      SMTP, text + HTML (Jinja2)
    slack    monitor.notify.slack.SlackNotifier      incoming webhook, Block Kit
    webhook  monitor.notify.webhook.WebhookNotifier  signed JSON to any URL

Each class has ``channel``, ``for_desk(desk, settings, options)`` and
``send(digest, envelope)`` (:class:`monitor.notify.base.Notifier`). Modules are
imported when a desk needs them, so a Slack-only setup never loads Jinja2.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from monitor.notify.base import Envelope, Notifier

if TYPE_CHECKING:
    from monitor.settings import DeskConfig, Settings

__all__ = ["NOTIFIERS", "Envelope", "Notifier", "build_notifiers", "notifier_class"]

#: channel name -> "module:Class"; the order is the order channels are tried in.
NOTIFIERS: Mapping[str, str] = {
    "email": "monitor.notify.email:EmailNotifier",
    "slack": "monitor.notify.slack:SlackNotifier",
    "webhook": "monitor.notify.webhook:WebhookNotifier",
}


def notifier_class(channel: str) -> Any:
    module, _, name = NOTIFIERS[channel].partition(":")
    return getattr(importlib.import_module(module), name)


def build_notifiers(desk: DeskConfig, settings: Settings,
                    options: Mapping[str, Any] | None = None) -> dict[str, Notifier]:
    """The notifiers of the channels ``desk`` configures, by channel name.

    ``options`` (all optional): ``timeout`` for HTTP, ``slack_pause`` between the
    parts of a split Slack message, ``renderer`` and ``ssl_context`` for email.
    """
    return {channel: notifier_class(channel).for_desk(desk, settings, options or {})
            for channel in NOTIFIERS if channel in desk.channels}
