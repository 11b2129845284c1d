"""Telegram channels as a source: a labelled set of posts served on loopback in
the t.me/s/ preview markup, polled with the shipped rules.

    .venv/bin/python bench/bench_telegram.py [bench/data/telegram.jsonl]

Each line of the set: channel, post, datetime, text, lang, labels (rule ids).
One preview page per channel (plus a photo without caption and a service
message each, which must not become items) is polled once; it reports the
items stored against the posts with text, the rules' precision and recall on
the posts (micro, over every (post, rule) pair), that a repeat poll stores
nothing, and that a new post is one item. Without the set it says so, exit 2.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import tempfile
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DEFAULT = Path(__file__).parent / "data" / "telegram.jsonl"


def _post(channel: str, post: int, when: str, text: str | None, extra: str = "") -> str:
    body = ""
    if text is not None:
        body = (
            '<div class="tgme_widget_message_text js-message_text" dir="auto">'
            + html.escape(text).replace("\n", "<br/>")
            + "</div>"
        )
    return (
        f'<div class="tgme_widget_message_wrap"><div class="tgme_widget_message'
        f' js-widget_message{extra}" data-post="{channel}/{post}">'
        f'<div class="tgme_widget_message_bubble">{body}'
        f'<a class="tgme_widget_message_date" href="https://t.me/{channel}/{post}">'
        f'<time datetime="{when}">x</time></a></div></div></div>'
    )


def page(channel: str, posts: list[dict[str, object]]) -> bytes:
    parts = [_post(channel, int(str(p["post"])), str(p["datetime"]), str(p["text"])) for p in posts]
    top = max(int(str(p["post"])) for p in posts)
    parts.append(_post(channel, top + 1000, "2022-01-01T00:00:00Z", None))  # photo only
    parts.append(
        _post(
            channel, top + 1001, "2022-01-01T00:00:00Z", "Channel photo updated", " service_message"
        )
    )
    return (
        "<!DOCTYPE html><html><head><title>" + channel + "</title></head><body>"
        '<div class="tgme_channel_info"></div>' + "".join(parts) + "</body></html>"
    ).encode()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT))
    args = ap.parse_args()
    path = Path(args.corpus)
    if not path.is_file():
        print(
            f"{path}: no such file; pass the labelled Telegram set (channel, post, "
            "datetime, text, lang, labels per line)",
            file=sys.stderr,
        )
        return 2
    rows = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    by_channel: dict[str, list[dict[str, object]]] = defaultdict(list)
    for r in rows:
        by_channel[r["channel"]].append(r)
    pages = {f"/s/{c}": page(c, ps) for c, ps in by_channel.items()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.split("?")[0])
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *a: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    from monitor.config import load_settings
    from monitor.pipeline import Poller
    from monitor.rules import load_rules
    from monitor.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "monitor.toml"
        config.write_text(
            f'[storage]\nurl = "sqlite:///{tmp}/m.db"\n'
            + "".join(f'[[feeds]]\nurl = "{base}/s/{c}"\nkind = "telegram"\n' for c in by_channel),
            encoding="utf-8",
        )
        settings = load_settings(config)
        store = Store.open(settings.storage_url)
        poller = Poller(settings, store, lambda: load_rules(settings.rules_dir))
        first = poller.poll()
        items = {r["link"]: r["id"] for r in store.iter_items()}
        hits: set[tuple[str, str]] = set()
        for h in store.list_hits():
            hits.add((h.link or "", h.rule_id))
        repeat = poller.poll().new_items
        c0 = next(iter(by_channel))
        newest = max(int(str(p["post"])) for p in by_channel[c0])
        by_channel[c0].append(
            {
                "post": newest + 1,
                "datetime": "2026-12-02T20:00:00Z",
                "text": "Новый пост: КТК возобновил отгрузки",
            }
        )
        pages[f"/s/{c0}"] = page(c0, by_channel[c0])
        new_post = poller.poll().new_items
        store.close()
    server.shutdown()

    with_text = [r for r in rows if str(r["text"]).strip()]
    expected = {
        (f"https://t.me/{r['channel']}/{r['post']}", rule) for r in rows for rule in r["labels"]
    }
    tp = len(hits & expected)
    precision = tp / len(hits) if hits else 1.0
    recall = tp / len(expected) if expected else 1.0
    result = {
        "posts": len(rows),
        "posts_with_text": len(with_text),
        "items": len(items),
        "feeds_failed": first.failed,
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "hits": len(hits),
        "labelled_pairs": len(expected),
        "repeat_poll_new_items": repeat,
        "new_post_new_items": new_post,
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
