"""The ``news-monitor`` command line: parse arguments, build objects, call them.

Wiring only: each command loads what it needs (lazily, so ``check`` or
``match`` never import the HTTP client or the database) and hands it to the
module that does the work. Exit status: 0 done, 1 invalid configuration or
rules, store unreachable, or a failed delivery; 2 bad usage (argparse).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from monitor import __version__
from monitor.errors import ConfigError, MonitorError, Problem, RuleFileError
from monitor.models import isoformat_z

if TYPE_CHECKING:
    from monitor.fetch_child import ForkedFetcher
    from monitor.match import Matcher
    from monitor.rules import RuleSet
    from monitor.settings import Settings
    from monitor.store import Store

log = logging.getLogger("monitor.cli")


class _Exit(Exception):
    """Leave the command with this status (the message is already printed)."""

    def __init__(self, status: int) -> None:
        self.status = status


def _safe(text: object) -> str:
    """Feed text on a terminal: no control characters, no ANSI escapes."""
    from monitor.text import strip_control

    return strip_control(str(text))


def _fail(problems: Sequence[Problem] | str) -> _Exit:
    if isinstance(problems, str):
        print(f"news-monitor: {problems}", file=sys.stderr)
    else:
        for p in problems:
            print(p, file=sys.stderr)
    return _Exit(1)


# -- building the parts -------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    from monitor.settings import load_settings

    try:
        return load_settings(args.config)
    except ConfigError as e:
        raise _fail(e.problems) from e


def _rules(settings: Settings) -> RuleSet:
    rules = _load_rules(settings)
    if isinstance(rules, list):
        raise _fail(rules)
    return rules


def _load_rules(settings: Settings) -> RuleSet | list[Problem]:
    """The configured rules, or every problem with them."""
    from monitor.rules import load_rules

    try:
        rules = load_rules(settings.rules_dir)
    except RuleFileError as e:
        return list(e.problems)
    problems: list[Problem] = []
    from monitor.settings import validate_desk_rules

    validate_desk_rules(settings, set(rules.ids), problems.append)
    return problems or rules


def _pickled_rules(settings: Settings) -> bytes | list[Problem]:
    """:func:`_load_rules` for another process: the RuleSet comes pickled, so that
    a process that never needs it (a poll of 304s) never imports its modules."""
    import pickle

    rules = _load_rules(settings)
    return rules if isinstance(rules, list) else pickle.dumps(rules, pickle.HIGHEST_PROTOCOL)


def _matcher(rules: RuleSet) -> Matcher:
    from monitor.match import Matcher

    return Matcher(rules)


def _store(settings: Settings) -> Store:
    from monitor.store import Store

    try:
        store = Store.open(settings.storage_url, timeout=settings.storage_timeout)
        # SPEC: a desk starts with the hits matched after any command first loaded it.
        store.register_desks(d.name for d in settings.desks)
    except MonitorError as e:
        raise _fail(str(e)) from e
    return store


def _setup_logging(args: argparse.Namespace, settings: Settings | None = None) -> None:
    from monitor import log as logsetup

    level = args.log_level or (settings.log_level if settings else "warning")
    logsetup.setup(level)


def _parse_since(text: str | None) -> datetime | None:
    """``2d`` (back from now) or an ISO date/time (UTC unless it says otherwise)."""
    if not text:
        return None
    from monitor.settings import parse_duration

    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(f"--since {text!r} is neither a duration such as 2d nor an ISO date") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# -- commands -----------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from monitor.rules import load_rules
    from monitor.settings import load_settings, validate_desk_rules

    problems: list[Problem] = []
    settings = None
    try:
        settings = load_settings(args.config)
    except ConfigError as e:
        problems.extend(e.problems)
    rules_dir = settings.rules_dir if settings else None
    if rules_dir is None:
        from monitor.settings import shipped_rules_dir

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
    if problems:
        raise _fail(problems)
    assert settings is not None and rules is not None
    print(f"ok: {settings.source}: {len(settings.feeds)} feeds, {len(rules.rules)} rules "
          f"({', '.join(rules.ids)}), {len(settings.desks)} desks")
    return 0


def cmd_poll(args: argparse.Namespace) -> int:
    from monitor.fetch_child import ForkedFetcher
    from monitor.pipeline import FeedOutcome, Poller

    settings = _settings(args)
    _setup_logging(args, settings)
    # Forked now, while this process is small and has no thread, socket or
    # database open: the child checks the rules and imports the HTTP client
    # while this process opens the store, then fetches and parses while this
    # one matches and stores.
    # Invalid rules (a list of problems) stop the child before it fetches anything.
    fetcher = (ForkedFetcher.start(functools.partial(_pickled_rules, settings),
                                   fetch_if=lambda rules: not isinstance(rules, list))
               if settings.feeds else None)
    try:
        rules: RuleSet | Callable[[], RuleSet]
        if fetcher is None:
            rules = _rules(settings)
            store = _store(settings)
        else:
            _send_early(fetcher, settings)
            store = _store(settings)
            loaded = fetcher.prepared()
            if isinstance(loaded, list):  # the rules are invalid: exit 1, polling nothing
                store.close()
                raise _fail(loaded)
            import pickle

            # Unpickled (importing the rules' modules) only if some feed has new items.
            rules = functools.partial(pickle.loads, loaded)
    except BaseException:
        if fetcher is not None:
            fetcher.close()
        raise
    bar = _Progress(sys.stderr) if sys.stderr.isatty() and not args.quiet else None

    def progress(outcome: FeedOutcome, done: int, total: int) -> None:
        if bar:
            bar.update(done, total)
        if args.verbose or not outcome.ok:
            line = (f"{'ok  ' if outcome.ok else 'FAIL'} {_safe(outcome.name)}: "
                    f"{outcome.status} "
                    + (f"{outcome.new_items} new" if outcome.ok else _safe(outcome.error)))
            if bar:
                bar.clear()
            print(line, file=sys.stderr)

    try:
        # The rules, not a Matcher: it is compiled only if some feed has new items.
        report = Poller(settings, store, rules).poll(on_outcome=progress, fetcher=fetcher)
    except MonitorError as e:
        raise _fail(str(e)) from e
    finally:
        if bar:
            bar.clear()
        if fetcher is not None:
            fetcher.close()
        store.close()
    print(report.summary())
    return 0


def _send_early(fetcher: ForkedFetcher, settings: Settings) -> None:
    """Start the fetch child on the feeds' stored validators, read without
    SQLAlchemy, so that it fetches while this process imports SQLAlchemy and
    opens the store (on an all-304 poll that was the critical path). A store
    that is new or needs a migration is left to the usual way."""
    from monitor.feedstate import fetch_requests
    from monitor.store import direct

    try:
        validators = direct.feed_validators(settings.storage_url,
                                            timeout=settings.storage_timeout)
    except MonitorError as e:  # unreachable: say so now, not after another timeout
        raise _fail(str(e)) from e
    if validators is not None:
        fetcher.send(fetch_requests(settings.feeds, validators), settings.poll)


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.daemon import Daemon

    return Daemon(args.config, tick=args.tick).run()


def cmd_status(args: argparse.Namespace) -> int:
    from monitor.deliver import delivery_status

    settings = _settings(args)
    store = _store(settings)
    try:
        states = store.feed_states()
        counts = store.item_counts()
        totals = store.totals()
        daemons = [d for d in store.states("daemon:").values() if d]
        deliveries = delivery_status(settings, store)
    except MonitorError as e:
        raise _fail(str(e)) from e
    finally:
        store.close()
    feeds = []
    for f in settings.feeds:
        st = states.get(f.url)
        last_status: int | str | None = st.last_status if st else None
        if isinstance(last_status, str) and last_status.isdigit():
            last_status = int(last_status)
        feeds.append({
            "url": f.url,
            "name": f.name or (st.title if st else None) or f.url,
            "items": counts.get(f.url, 0),
            "last_polled": isoformat_z(st.last_polled) if st else None,
            "last_status": last_status,
            "error": st.error if st else None,
            "failures": st.failures if st else 0,
            "next_poll": isoformat_z(st.next_poll) if st else None,
            "disabled": st.disabled if st else None,
            "flag": st.flag if st else None,
        })
    doc: dict[str, Any] = {"feeds": feeds, "items": totals["items"], "hits": totals["hits"],
                           **deliveries, "daemons": daemons}
    if args.format == "json":
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return 0
    rows = [("FEED", "ITEMS", "LAST POLLED", "STATUS", "FAIL", "NEXT POLL", "ERROR")]
    for f in feeds:
        rows.append((_safe(f["name"])[:40], str(f["items"]), f["last_polled"] or "never",
                     str(f["last_status"] if f["last_status"] is not None else "-"),
                     str(f["failures"]), f["next_poll"] or ("disabled" if f["disabled"] else "-"),
                     _safe(f["error"] or f["flag"] or "")[:60]))
    _table(rows)
    print(f"\n{doc['items']} items, {doc['hits']} hits, "
          f"{doc['pending_deliveries']} pending deliveries (hit x channel)")
    for d in doc["retrying"]:
        print(f"retrying: {d['desk']}/{d['channel']} {d['kind']} #{d['id']}, "
              f"{d['attempts']} attempts, next {d['next_attempt']}: {_safe(d['last_error'])}")
    for d in doc["failed"]:
        print(f"FAILED:   {d['desk']}/{d['channel']} {d['kind']} #{d['id']} "
              f"(not retried until `deliveries retry {d['id']}`): {_safe(d['last_error'])}")
    for d in daemons:
        reload = d.get("last_reload") or {}
        rules = ", ".join(d.get("rules", {}))
        line = f"daemon {d.get('owner')}: up since {d.get('started')}, rules {rules}"
        if reload:
            verdict = "ok" if reload.get("ok") else \
                "REJECTED: " + "; ".join(reload.get("errors", []))
            line += f"; last reload {reload.get('at')} {verdict}"
        print(_safe(line))
    return 0


def cmd_hits(args: argparse.Namespace) -> int:
    from monitor.store import direct

    settings = _settings(args)
    query = {"since": _parse_since(args.since), "rule_id": args.rule, "limit": args.limit}
    try:
        # Straight to the database: without SQLAlchemy's import the command
        # answers in a fraction of the time (issue 7).
        hits = direct.list_direct(settings.storage_url, timeout=settings.storage_timeout,
                                    desks=(d.name for d in settings.desks), **query)
    except MonitorError as e:
        raise _fail(str(e)) from e
    if hits is None:  # a new database, a migration or a new desk: the Store does those
        store = _store(settings)
        try:
            hits = store.list_hits(**query)
        except MonitorError as e:
            raise _fail(str(e)) from e
        finally:
            store.close()
    if args.format == "jsonl":
        for h in hits:
            print(json.dumps({
                "rule": h.rule_id, "score": h.score, "severity": str(h.severity),
                "guid": h.guid, "title": h.title, "link": h.link, "feed": h.feed_url,
                "feed_name": h.feed_name, "published": isoformat_z(h.published),
                "matched_at": isoformat_z(h.matched_at), "rule_version": h.rule_version,
                "evidence": [e.to_dict() for e in h.evidence],
            }, ensure_ascii=False))
        return 0
    rows = [("MATCHED", "RULE", "SCORE", "FEED", "TITLE")]
    rows += [(isoformat_z(h.matched_at) or "", h.rule_id, f"{h.score:.0f}",
              _safe(h.feed_name)[:24], _safe(h.title)[:70]) for h in hits]
    _table(rows)
    return 0


def _read_jsonl(stream: TextIO, source: str) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise _fail(f"{source}:{number}: not JSON: {e.msg}") from e
        if not isinstance(rec, dict):
            raise _fail(f"{source}:{number}: expected a JSON object")
        yield rec


def _open_input(path: str | None) -> tuple[TextIO, str]:
    if path in (None, "-"):
        return sys.stdin, "<stdin>"
    try:
        return open(path, encoding="utf-8"), str(path)  # closed by the caller
    except OSError as e:
        raise _fail(f"{path}: {e.strerror}") from e


def cmd_match(args: argparse.Namespace) -> int:
    settings = _settings(args)
    matcher = _matcher(_rules(settings))
    stream, source = _open_input(args.file)
    try:
        for rec in _read_jsonl(stream, source):
            title, summary = str(rec.get("title") or ""), str(rec.get("summary") or "")
            for m in matcher.match(title, summary):
                sys.stdout.write(json.dumps({
                    "id": rec.get("id"), "rule": m.rule_id, "score": round(m.score, 1),
                    "evidence": [e.to_dict() for e in m.evidence],
                }, ensure_ascii=False) + "\n")
    finally:
        if stream is not sys.stdin:
            stream.close()
    return 0


def _one_rule(settings: Settings, ref: str) -> RuleSet:
    """A rule by id from the configured rules, or a rule file by path (an edit)."""
    from monitor.rules import RuleSet, load_rule_file

    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        try:
            return RuleSet((load_rule_file(path),))
        except RuleFileError as e:
            raise _fail(e.problems) from e
    rules = _rules(settings)
    rule = rules.get(ref)
    if rule is None:
        raise _fail(f"no rule {ref!r} (rules: {', '.join(rules.ids)})")
    return RuleSet((rule,))


def cmd_rules_test(args: argparse.Namespace) -> int:
    settings = _settings(args)
    rules = _one_rule(settings, args.rule)
    rule = rules.rules[0]
    matches = _matcher(rules).match(args.text, args.summary or "")
    if not matches:
        print(f"no match: {rule.id} does not match this text")
        return 0
    m = matches[0]
    print(f"MATCH {rule.id} ({rule.severity}) score {m.score:.1f}")
    for e in m.evidence:
        print(f"  {e.field}[{e.start}:{e.end}] {_safe(e.text)!r} ~ term {_safe(e.term)!r} "
              f"({e.score:.1f})")
    return 0


def cmd_rules_eval(args: argparse.Namespace) -> int:
    from monitor.evaluate import evaluate, format_report

    settings = _settings(args)
    rules = _rules(settings) if not args.rules_dir else _rules_from(Path(args.rules_dir))
    stream, source = _open_input(args.corpus)
    try:
        report = evaluate(_matcher(rules), list(_read_jsonl(stream, source)))
    finally:
        if stream is not sys.stdin:
            stream.close()
    print(_safe_block(format_report(report)))
    return 0


def _safe_block(text: str) -> str:
    return "\n".join(_safe(line) for line in text.splitlines())


def _rules_from(directory: Path) -> RuleSet:
    from monitor.rules import load_rules

    try:
        return load_rules(directory)
    except RuleFileError as e:
        raise _fail(e.problems) from e


def cmd_rules_backtest(args: argparse.Namespace) -> int:
    settings = _settings(args)
    rules = _one_rule(settings, args.rule)
    rule = rules.rules[0]
    matcher = _matcher(rules)
    since = _parse_since(args.since)
    store = _store(settings)
    try:
        stored = {h.guid + "\0" + h.feed_url for h in store.list_hits(since=since,
                                                                       rule_id=rule.id)}
        caught = []
        scanned = 0
        for rec in store.iter_items(since=since):
            scanned += 1
            got = matcher.match(rec["title"], rec["summary"])
            if got:
                caught.append((rec, got[0]))
    except MonitorError as e:
        raise _fail(str(e)) from e
    finally:
        store.close()
    keys = {rec["guid"] + "\0" + rec["feed"] for rec, _ in caught}
    new = keys - stored
    lost = stored - keys
    for rec, m in sorted(caught, key=lambda c: c[0]["published"], reverse=True):
        mark = "+" if rec["guid"] + "\0" + rec["feed"] in new else " "
        terms = ", ".join(sorted({e.text for e in m.evidence}))
        print(f"{mark} {isoformat_z(rec['published'])}  {m.score:5.1f}  "
              f"{_safe(rec['title'])[:80]}  [{_safe(terms)[:60]}]")
    print(f"\n{rule.id}: {len(caught)} of {scanned} stored items would match"
          + (f" since {isoformat_z(since)}" if since else "")
          + f"; {len(new)} not caught by the deployed rule (+), "
            f"{len(lost)} caught by it that this version would drop")
    return 0


def cmd_feeds(args: argparse.Namespace) -> int:
    from monitor import opml

    settings = _settings(args)
    if args.feeds_command == "list":
        rows = [("NAME", "INTERVAL", "URL")]
        from monitor.settings import format_duration

        for f in settings.feeds:
            rows.append((_safe(f.name or "-"), format_duration(settings.feed_interval(f)),
                         _safe(f.url)))
        _table(rows)
        return 0
    if args.feeds_command == "export":
        sys.stdout.write(opml.export_opml([(f.url, f.name) for f in settings.feeds]))
        return 0
    from monitor import config_edit

    path = config_edit.target_path(args.config, settings)
    if args.feeds_command == "add":
        added = config_edit.add_feeds(path, settings, [(args.url, args.name, args.interval)])
    else:
        try:
            data = Path(args.opml).read_bytes()
        except OSError as e:
            raise _fail(f"{args.opml}: {e.strerror}") from e
        try:
            entries = opml.import_opml(data)
        except ValueError as e:
            raise _fail(f"{args.opml}: {e}") from e
        added = config_edit.add_feeds(path, settings, [(u, n, None) for u, n in entries])
    print(f"{path}: added {added} feed{'s' if added != 1 else ''}")
    return 0


# -- small output helpers --------------------------------------------------------


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


class _Progress:
    """A one-line progress bar on a terminal (stderr)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False

    def update(self, done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} feeds")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


# -- the parser --------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="news-monitor",
        description="Poll news feeds, match watch rules, send digests and alerts.")
    parser.add_argument("--version", action="version", version=f"news-monitor {__version__}")
    parser.add_argument("--config", metavar="PATH",
                        help="configuration file (default: $NEWS_MONITOR_CONFIG, then "
                             "./monitor.toml, then the embedded default)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        help="override the configured log level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="the daemon: poll, match, store, send digests and alerts")
    p.add_argument("--tick", type=float, default=None, metavar="SECONDS",
                   help=argparse.SUPPRESS)  # how often due feeds are looked for (tests)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("poll", help="poll every feed once, match and store, then exit")
    p.add_argument("-v", "--verbose", action="store_true", help="a line per feed")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_poll)

    p = sub.add_parser("check", help="validate the configuration and every rule file")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("match", help="match JSON Lines items (file or stdin) against the rules")
    p.add_argument("file", nargs="?", help="JSON Lines file (default: stdin)")
    p.set_defaults(func=cmd_match)

    p = sub.add_parser("hits", help="list stored hits")
    p.add_argument("--since", metavar="WHEN", help="a duration back from now (2d) or an ISO date")
    p.add_argument("--rule", metavar="ID")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--format", choices=("table", "jsonl"), default="table")
    p.set_defaults(func=cmd_hits)

    p = sub.add_parser("status", help="the state of each feed and of the deliveries")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("feeds", help="list, add, import or export feeds")
    fs = p.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    fs.add_parser("list", help="the configured feeds")
    a = fs.add_parser("add", help="append a [[feeds]] entry to the config file")
    a.add_argument("url")
    a.add_argument("--name")
    a.add_argument("--interval", help="e.g. 5m")
    i = fs.add_parser("import", help="append the feeds of an OPML file")
    i.add_argument("opml")
    fs.add_parser("export", help="print the feeds as OPML")
    p.set_defaults(func=cmd_feeds)

    p = sub.add_parser("rules", help="test, evaluate and backtest watch rules")
    rs = p.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    t = rs.add_parser("test", help='the verdict of one rule on a text, with its evidence')
    t.add_argument("rule", help="a rule id, or the path of a rule file")
    t.add_argument("text", help="the title to test")
    t.add_argument("--summary", help="a summary to test with it")
    t.set_defaults(func=cmd_rules_test)
    e = rs.add_parser("eval", help="precision, recall and F1 on a labelled JSON Lines corpus")
    e.add_argument("corpus")
    e.add_argument("--rules-dir", help="evaluate the rules of this folder instead")
    e.set_defaults(func=cmd_rules_eval)
    b = rs.add_parser("backtest", help="what a rule (by id, or an edited file) would have "
                                       "caught in the stored items")
    b.add_argument("rule", help="a rule id, or the path of a rule file")
    b.add_argument("--since", default="30d", help="how far back (default 30d), or an ISO date")
    b.set_defaults(func=cmd_rules_backtest)
    from monitor import cli_deliver; cli_deliver.add_commands(sub)  # noqa: E702, I001
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except _Exit as e:
        return e.status
    except MonitorError as e:
        print(f"news-monitor: {_safe(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:  # the system's refusal (a full disk under the output): said, not a trace
        if e.errno is None:
            raise
        _say_os_error(e)
        return 1


def _say_os_error(e: OSError) -> None:
    """One line on stderr for an error of the system, if stderr can still take it."""
    with contextlib.suppress(OSError):
        where = f"{e.filename}: " if e.filename else ""
        print(f"news-monitor: {where}{e.strerror}", file=sys.stderr, flush=True)


def entry() -> NoReturn:
    """The ``news-monitor`` command: :func:`main`, then an exit that skips the
    interpreter's teardown of every imported module (~30 ms of a 0.3 s quiet
    poll, issue 7). What the teardown would still have done that matters is
    done first: the output and the logs are flushed. With a thread still
    running, or when ``main`` raises (``--help``, a bad argument), Python exits
    the usual way."""
    code = main()
    if threading.active_count() > 1:
        sys.exit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            pass  # the reader went away: nothing left to say to it
        except OSError as e:  # as main() says it when the command itself writes
            if stream is sys.stdout:
                _say_os_error(e)
            code = code or 1
    os._exit(code)


if __name__ == "__main__":
    entry()
