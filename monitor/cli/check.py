"""The commands that need neither the network nor the store: ``check`` validates
the configuration and the rules, ``match`` runs the rules on items it reads.

    news-monitor check
    news-monitor match [FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from monitor.cli import common
from monitor.errors import ConfigError, Problem, RuleFileError

if TYPE_CHECKING:
    from monitor.settings import Settings


def cmd_check(args: argparse.Namespace) -> int:
    from monitor.config import load_settings
    from monitor.rules import load_rules
    from monitor.settings import idle_desks, validate_desk_rules

    problems: list[Problem] = []
    settings = None
    try:
        # Unlike the other commands, check reads for what this machine lacks now
        # too (a secret, a local feed file): the service would fail without it.
        settings = load_settings(args.config, check_environment=True)
    except ConfigError as e:
        problems.extend(e.problems)
    rules_dir = settings.rules_dir if settings else None
    if rules_dir is None:
        from monitor.rules import shipped_rules_dir

        rules_dir = shipped_rules_dir()
    rule_ids: set[str] = set()
    try:
        rules = load_rules(rules_dir)
        rule_ids = set(rules.ids)
    except RuleFileError as e:
        problems.extend(e.problems)
        rules = None
    if settings is not None and rules is not None:
        validate_desk_rules(settings, rule_ids, problems.append)
    if settings is not None:
        problems.extend(_web_problems(settings))
        for warning in idle_desks(settings):
            print(_warning(warning), file=sys.stderr)
    if problems:
        raise common.fail(problems)
    assert settings is not None and rules is not None
    print(f"ok: {settings.source}: {len(settings.feeds)} feeds, {len(rules.rules)} rules "
          f"({', '.join(rules.ids)}), {len(settings.desks)} desks")
    if not settings.desks:  # valid, but it would never send a thing: say so (the daemon does too)
        print(f"{settings.source}: warning: no [[desks]]: hits are stored but nothing is sent; "
              "`news-monitor init` writes a configuration with a desk", file=sys.stderr)
    return 0


def _web_problems(settings: Settings) -> list[Problem]:
    """What would stop the web view: an address off loopback without
    authentication, a password file that cannot be read."""
    from monitor.web.auth import listen_problem, read_passwords

    found: list[Problem] = []
    users = None
    if settings.web_passwords is not None:
        try:
            users = read_passwords(settings.web_passwords)
        except OSError as e:
            found.append(Problem(settings.source, None, None, f"web.passwords: cannot read "
                                 f"{settings.web_passwords}: {e.strerror}"))
        except ValueError as e:
            found.append(Problem(settings.source, None, None, f"web.passwords: {e}"))
    if settings.web_listen:
        host, _, port = settings.web_listen.rpartition(":")
        refused = listen_problem(host.strip("[]"), int(port), bool(users))
        if refused and settings.web_passwords is None:
            found.append(Problem(settings.source, None, None, f"web.listen: {refused}"))
    return found


def _warning(problem: Problem) -> str:
    """``file:line: warning: message``: a problem that does not fail the check."""
    where = problem.path if problem.line is None else f"{problem.path}:{problem.line}"
    return f"{where}: warning: {problem.message}"


def cmd_match(args: argparse.Namespace) -> int:
    settings = common.settings(args)
    matcher = common.matcher(common.rules(settings))
    stream, source = common.open_input(args.file)
    encode = json.JSONEncoder(ensure_ascii=False).encode
    write = sys.stdout.write
    rule_ids: dict[str, str] = {}
    try:
        for rec in common.read_jsonl(stream, source):
            title, summary = str(rec.get("title") or ""), str(rec.get("summary") or "")
            matches = matcher.match(title, summary)
            if not matches:
                continue
            # The line json.dumps would write, built by hand: rules hitting one item
            # share evidence entries and whole lists (the matcher's), each encoded once.
            head = '{"id": ' + encode(rec.get("id")) + ', "rule": '
            entries: dict[int, str] = {}
            lists: dict[int, str] = {}
            for m in matches:
                listed = lists.get(id(m.evidence))
                if listed is None:
                    parts = []
                    for e in m.evidence:
                        one = entries.get(id(e))
                        if one is None:
                            one = entries[id(e)] = e.to_json()
                        parts.append(one)
                    listed = lists[id(m.evidence)] = ", ".join(parts)
                rule = rule_ids.get(m.rule_id)
                if rule is None:
                    rule = rule_ids[m.rule_id] = encode(m.rule_id)
                # A finite float's repr is its JSON (json.encoder's float.__repr__).
                write(head + rule + ', "score": ' + repr(round(m.score, 1))
                      + ', "evidence": [' + listed + "]}\n")
    finally:
        if stream is not sys.stdin:
            stream.close()
    return 0


def register(sub: common.Subparsers) -> None:
    p = sub.add_parser("check", help="validate the configuration and every rule file")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("match", help="match JSON Lines items (file or stdin) against the rules")
    p.add_argument("file", nargs="?", help="JSON Lines file (default: stdin)")
    p.set_defaults(func=cmd_match)
