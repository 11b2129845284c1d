"""A store polled from the held-out sets of bench/data, for looking at the web
view (and its screenshots): each ``articles-*.jsonl`` and ``stories-*.jsonl``
file becomes one RSS file, one feed per file (per source for the stories),
polled by ``news-monitor poll`` with the shipped rules, plus one hostile entry.

    .venv/bin/python bench/web_store.py FOLDER    # writes FOLDER/monitor.toml and the store
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench" / "data"
HOSTILE = {"id": "hostile-1", "title": "<script>alert(1)</script> CPC halts loading "
           "at Caspian Pipeline Consortium terminal <img src=x onerror=alert(2)>",
           "summary": "Caspian Pipeline Consortium suspended oil loadings; <b>bold</b> "
           "\"quoted\" & more", "link": "javascript:alert(3)", "source": "Hostile",
           "published": "2026-12-01T08:00:00Z", "lang": "en"}


def _rss(name: str, records: list[dict[str, str]]) -> str:
    entries = []
    for r in records:
        published = r.get("published")
        when = (format_datetime(datetime.fromisoformat(published.replace("Z", "+00:00")))
                if published else "")
        summary = r.get("summary") or r.get("lede") or ""
        entries.append(
            f"<item><guid isPermaLink=\"false\">{escape(r['id'])}</guid>"
            f"<title>{escape(r['title'])}</title><link>{escape(r.get('link') or '')}</link>"
            f"<description>{escape(summary)}</description>"
            + (f"<pubDate>{when}</pubDate>" if when else "") + "</item>")
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{escape(name)}</title><link>https://example.org/</link>"
            f"<description>{escape(name)}</description>{''.join(entries)}</channel></rss>")


def build(folder: Path, *, hostile: bool = True) -> Path:
    """Write the feeds and a configuration into ``folder``, poll once; the config's path."""
    feeds = folder / "feeds"
    feeds.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for path in sorted(DATA.glob("*.jsonl")):
        if path.name.startswith("telegram"):
            continue
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                   if line.strip()]
        (feeds / f"{path.stem}.xml").write_text(_rss(path.stem, records), encoding="utf-8")
        names.append(path.stem)
    if hostile:
        (feeds / "hostile.xml").write_text(_rss("Hostile <b>feed</b>", [HOSTILE]),
                                           encoding="utf-8")
        names.append("hostile")
    config = folder / "monitor.toml"
    config.write_text(
        "[storage]\nurl = \"sqlite:///state/monitor.db\"\n\n"
        f"[rules]\ndir = \"{REPO / 'rules'}\"\n\n"
        "[web]\nlisten = \"127.0.0.1:8080\"\n\n"
        + "".join(f"[[feeds]]\nurl = \"feeds/{n}.xml\"\nname = \"{n}\"\n\n" for n in names)
        + "[[desks]]\nname = \"energy\"\nrules = [\"cpc-disruption\", \"btc-diversion\"]\n\n"
        "[[desks]]\nname = \"trade\"\nrules = [\"eaeu-grain-ban\", \"sanctioned-transit\"]\n",
        encoding="utf-8")
    subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "poll"],
                   check=True, capture_output=True, text=True, cwd=folder)
    return config


if __name__ == "__main__":
    print(build(Path(sys.argv[1]).resolve()))
