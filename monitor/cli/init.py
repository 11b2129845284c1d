"""``news-monitor init [DIR]``: a production configuration to start from.

Writes into DIR (default: the current folder) a commented ``monitor.toml``
(the starter feeds, one desk skeleton, ``[smtp]``, ``[metrics]``, the state
path), a ``secrets.env`` template holding the ``env:`` variables that
configuration names (mode 0600) and a copy of the shipped rules in
``DIR/rules``. It overwrites nothing without ``--force``. The configuration
passes ``check`` once its secrets are set; systemd/README.md installs with it.

    news-monitor init [DIR] [--state DIR] [--force]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from monitor.cli import common

# The systemd unit's folders (systemd/news-monitor.service: ConfigurationDirectory=
# and StateDirectory= news-monitor). The service may write only the latter.
SYSTEMD_CONFIG = Path("/etc/news-monitor")
SYSTEMD_STATE = Path("/var/lib/news-monitor")

#: The secrets the configuration names, as env:NAME; the commented ones belong to
#: the commented channels of the desk skeleton.
SECRETS = ("SMTP_PASSWORD",)
COMMENTED_SECRETS = ("SLACK_WEBHOOK_MAIN", "TELEGRAM_BOT_TOKEN", "TEAMS_WEBHOOK_MAIN",
                     "WEBHOOK_SECRET_MAIN")


def _string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    import json

    return json.dumps(value, ensure_ascii=False)


def state_dir(target: Path, given: str | None, environ: Mapping[str, str]) -> str:
    """Where the database goes: ``--state``; else, under systemd, its state
    folder; else ``state`` beside the configuration (relative, so the folder can move)."""
    if given:
        return str(Path(given).absolute())
    if environ.get("STATE_DIRECTORY"):
        return environ["STATE_DIRECTORY"].split(":")[0]
    if target.absolute() == SYSTEMD_CONFIG:
        return str(SYSTEMD_STATE)
    return "state"


def configuration(state: str, rule_ids: list[str]) -> str:
    """The text of the commented ``monitor.toml``."""
    from monitor import __version__
    from monitor.settings import DEFAULT_FEEDS

    feeds = "\n".join(f"[[feeds]]\nname = {_string(name)}\nurl = {_string(url)}\n"
                      for name, url in DEFAULT_FEEDS)
    sqlite = f"sqlite:///{state}/monitor.db"
    return f'''\
# news-monitor configuration, written by `news-monitor init` ({__version__}).
# Every key is checked: run `news-monitor --config THIS_FILE check` after an edit.
# Relative paths resolve against this file's folder. Durations: 30s, 15m, 2h, 1d, 1h30m.
# Secrets are never written here: they are env:NAME (set in secrets.env beside this
# file) or file:PATH. The README's "Configuration" lists every key.

[storage]
# SQLite in the state folder. Under systemd it must be the unit's StateDirectory
# ({SYSTEMD_STATE}), the one folder the service may write. For several daemons,
# one PostgreSQL (its password as PGPASSWORD in secrets.env):
#   url = "postgresql://news_monitor@db.example.org/news_monitor"
url = {_string(sqlite)}
timeout = "30s"                     # wait this long for a lock or a connection

[rules]
dir = "rules"                       # one YAML file per topic; rules/README.md teaches the format

[poll]
interval = "15m"                    # default per feed
concurrency = 32                    # fetches in flight
per_host = 4                        # ... and at most this many to one host
timeout = "20s"                     # a total deadline per fetch
max_backoff = "1d"                  # a failing feed: 1 min, 2, 4 ... its interval, doubling to this
stale_after_failures = 5            # failures in a row before a feed is flagged
full_text = false                   # true: fetch each new item's article page, match its text

[retention]
items = "180d"                      # items and their hits older than this go; or "forever"

[metrics]
listen = "127.0.0.1:9464"           # Prometheus /metrics; remove the table to serve none

[log]
level = "info"                      # debug | info | warning | error

# Mail for the desks' email: your relay.
[smtp]
host = "smtp.example.org"
port = 587
security = "starttls"               # none | starttls | tls (port 465)
sender = "News Monitor <news-monitor@example.org>"
username = "news-monitor"           # AUTH user; "" (and no password) for a relay without AUTH
password = "env:SMTP_PASSWORD"
timeout = "30s"                     # the greeting and each reply

# Slack, webhooks, Telegram, Teams: how long to wait for an answer, in all.
[delivery]
timeout = "15s"

# A desk: who gets which rules' hits, when, on which channels. Add one table per desk.
[[desks]]
name = "main"
rules = ["*"]                       # or some of: {", ".join(rule_ids)}
schedule = "0 7 * * 1-5"            # the digest: cron (0 or 7 = Sunday), in the desk's time zone
timezone = "UTC"                    # a name such as Asia/Almaty
alert_min_severity = "high"         # hits this grave or worse are also sent at once
quiet_hours = "22:00-07:00"         # alerts wait for the digest meanwhile
ops_notices = false                 # true: operator notices too (a feed silent for days...)
email = ["desk@example.org"]
# Other channels: uncomment, and set the variable in secrets.env.
# slack_webhook = "env:SLACK_WEBHOOK_MAIN"
# telegram_bot_token = "env:TELEGRAM_BOT_TOKEN"
# telegram_chat_id = "@your_channel"  # or a numeric chat id such as "-1001234567890"
# teams_webhook = "env:TEAMS_WEBHOOK_MAIN"
# webhook_url = "https://siem.example.org/hook"
# webhook_secret = "env:WEBHOOK_SECRET_MAIN"   # optional: HMAC-signs the JSON

# The feeds: a starter list for a Central Asia / energy / sanctions desk. Keep,
# remove or add; `news-monitor feeds add URL` and `feeds import OPML` append here.
# A feed may also say interval = "5m".

{feeds}'''


def secrets_template(config: Path) -> str:
    lines = "".join(f"{name}=\n" for name in SECRETS)
    commented = "".join(f"# {name}=\n" for name in COMMENTED_SECRETS)
    return f"""\
# Secrets of {config.name} beside this file, which names them as env:NAME. One
# NAME=value a line, no quotes needed. Keep it readable by root only (mode 0600).
# systemd reads it (EnvironmentFile=, systemd/README.md); in a shell:
#   set -a; . ./secrets.env; set +a
{lines}# For the channels commented out in the desk:
{commented}"""


def cmd_init(args: argparse.Namespace) -> int:
    import shlex

    from monitor.rules import load_rules, shipped_rules_dir
    from monitor.settings import DEFAULT_FEEDS

    target = Path(args.dir)
    shipped = shipped_rules_dir()
    rules = load_rules(shipped)  # the copy is of rules that load
    rule_files = sorted(p for p in shipped.iterdir()
                        if p.is_file() and (p.suffix in (".yaml", ".yml") or p.name == "README.md")
                        and not p.name.startswith("."))
    config, secrets = target / "monitor.toml", target / "secrets.env"
    writes = [config, secrets, *(target / "rules" / p.name for p in rule_files)]
    existing = [p for p in writes if p.exists() or p.is_symlink()]
    if existing and not args.force:
        for p in existing:
            print(f"news-monitor: init: {common.safe(p)} exists (--force overwrites it)",
                  file=sys.stderr)
        raise common.Exit(1)
    state = state_dir(target, args.state, os.environ)

    (target / "rules").mkdir(parents=True, exist_ok=True)
    config.write_text(configuration(state, list(rules.ids)), encoding="utf-8")
    # 0600 from the start, not after: the file never exists readable by others.
    fd = os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)  # an existing file (--force) keeps no wider mode
        f.write(secrets_template(config))
    for p in rule_files:
        (target / "rules" / p.name).write_bytes(p.read_bytes())

    where = state if Path(state).is_absolute() else f"{target / state} (relative: {state})"
    shown = common.safe
    print(f"wrote {shown(config)}: {len(DEFAULT_FEEDS)} starter feeds, one desk, "
          f"the database in {shown(where)}")
    print(f"wrote {shown(secrets)} (mode 0600): {', '.join(SECRETS)}")
    print(f"wrote {shown(target / 'rules')}/: {len(rules.rules)} rules ({', '.join(rules.ids)})")
    conf, env = (shlex.quote(shown(p.absolute())) for p in (config, secrets))
    print(f"""
Next:
  1. edit {conf}: the desk (name, rules, recipients), [smtp], the feeds
  2. fill in {env}
  3. check it with the secrets set:
       (set -a; . {env}; set +a; news-monitor --config {conf} check)""")
    return 0


def register(sub: common.Subparsers) -> None:
    p = sub.add_parser(
        "init", help="write a production configuration, a secrets template and the rules",
        description="Write DIR/monitor.toml (commented: the starter feeds, one desk, [smtp], "
                    "[metrics]), DIR/secrets.env (mode 0600) and a copy of the shipped rules "
                    "in DIR/rules. Nothing is overwritten without --force.")
    p.add_argument("dir", nargs="?", default=".", metavar="DIR",
                   help="where to write (default: the current folder; created if missing)")
    p.add_argument("--state", metavar="DIR",
                   help="the folder of the SQLite database (default: state/ beside "
                        f"monitor.toml; {SYSTEMD_STATE} for {SYSTEMD_CONFIG}, as the systemd "
                        "unit has it)")
    p.add_argument("--force", action="store_true", help="overwrite files that exist")
    p.set_defaults(func=cmd_init)
