"""Desks built in code, with the channels their keys would give them, as the
configuration reads them (for tests that need no monitor.toml)."""

from __future__ import annotations

from typing import Any

from monitor.channels.email import EmailOptions
from monitor.channels.slack import SlackOptions
from monitor.channels.webhook import WebhookOptions
from monitor.config_keys import Secret
from monitor.settings import DeskConfig


def desk_config(name: str, *, email: tuple[str, ...] = (), slack_webhook: Secret | None = None,
                webhook_url: str | None = None, webhook_secret: Secret | None = None,
                **kw: Any) -> DeskConfig:
    """A desk with the channels its keys would give it, as the configuration reads them."""
    options: dict[str, object] = {}
    if email:
        options["email"] = EmailOptions(email)
    if slack_webhook is not None:
        options["slack"] = SlackOptions(slack_webhook)
    if webhook_url:
        options["webhook"] = WebhookOptions(webhook_url, webhook_secret)
    return DeskConfig(name=name, channel_options=options, **kw)
