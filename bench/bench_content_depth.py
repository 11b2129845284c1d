"""How much of an article the shipped rules should read: macro-F1 on labelled
articles with the headline alone, the headline and lede, the headline and the
first N paragraphs of the body, and the headline and the whole body.

    .venv/bin/python bench/bench_content_depth.py [bench/data/articles-en-a.jsonl ...]

Each line: id, title, lede, body (paragraphs split by blank lines), labels
(rule ids). The body is matched as the summary field (the rules' default
fields), the text as an extractor would give it at best: no site chrome. It
answers a design question of full-text matching (issue 16) before any page is
fetched. A missing file is said, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"
DEFAULTS = [DATA / "articles-en-a.jsonl", DATA / "articles-rukk-a.jsonl"]


def macro_f1(
    rows: list[dict[str, object]], text_of: object, matcher: object, ids: list[str]
) -> tuple[float, int, int]:
    """bench_full_text's macro-F1, over the rules ``matcher`` finds in ``text_of`` each row."""
    from bench_full_text import macro_f1 as scored

    hits = {str(r["id"]): {m.rule_id for m in matcher.match(str(r["title"]), text_of(r))}  # type: ignore[attr-defined,operator]
            for r in rows}
    return scored(rows, hits, ids)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="*", default=[str(p) for p in DEFAULTS])
    args = ap.parse_args()
    missing = [p for p in args.corpus if not Path(p).is_file()]
    if missing:
        print(
            f"no such file: {', '.join(missing)} (labelled articles: id, title, lede, "
            "body, labels per line)",
            file=sys.stderr,
        )
        return 2
    from monitor.match import Matcher
    from monitor.rules import load_rules, shipped_rules_dir

    rules = load_rules(shipped_rules_dir())
    matcher, ids = Matcher(rules), [r.id for r in rules.rules]

    def paragraphs(r: dict[str, object], n: int) -> str:
        return "\n\n".join([p for p in str(r["body"]).split("\n\n") if p.strip()][:n])

    modes: list[tuple[str, object]] = [
        ("headline", lambda r: ""),
        ("headline + lede", lambda r: str(r["lede"])),
        *(
            (f"headline + {n} paragraph{'s' if n > 1 else ''}", lambda r, n=n: paragraphs(r, n))
            for n in (1, 2, 3, 5)
        ),
        ("headline + whole body", lambda r: str(r["body"])),
    ]
    for path in args.corpus:
        rows = [
            json.loads(line)
            for line in Path(path).read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        print(f"{path} ({len(rows)} articles)")
        for name, text_of in modes:
            f1, fp, fn = macro_f1(rows, text_of, matcher, ids)
            print(f"  {name:28} macro-F1 {f1:.3f}  false positives {fp:3}  misses {fn:3}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
