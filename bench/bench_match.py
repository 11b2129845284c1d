"""Matching throughput on three mixes, in-process and whole process, beside a regex baseline.

Run from the repository root::

    .venv/bin/python bench/bench_match.py                       # ~6 min
    .venv/bin/python bench/bench_match.py --corpus 'PATH/articles-*.jsonl' --runs 5
    .venv/bin/python bench/bench_match.py --smoke               # tiny sizes, for CI

The mixes:

* **generated**: 10,000 items made here (seed below): English news-like titles
  (~75 characters) and summaries (~400 characters), one in five in Russian;
  about 6 % carry a planted story for a shipped rule (its name typed exactly,
  inflected, or with one letter dropped or doubled), about 10 % a name from
  other rules (the mix of issue 7);
* **realistic**: 20,000 items built from article files (``--corpus``, JSON
  Lines with ``title``, ``lede``, ``body``, ``lang``; default
  ``bench/data/articles-*.jsonl``): each an article's title and 2-4 of its
  sentences in a row (the lede first, or a later run of the body), so mostly
  on topic, in English, Russian and Kazakh, as the held-out sets are written;
* **3 KB bodies**: 2,000 items, an article's title and its body as the summary,
  topped up with the next article of its language to ~3,000 characters.

The last two are skipped, saying so, when no article file is found.

Rule sets: the 4 shipped rules, and 200 rules: those 4 and 196 variants of
them (:func:`large_rules`: each variant renames most topic terms' longest
word after a pool of place and company names, keeps 5 % of them and
every context, ``require`` and ``exclude`` term: rules of the same size and
shape, about neighbouring topics).

For each mix and rule set, ``--runs`` paired runs, the order of the two tools
flipping each run: news-monitor and the regex baseline, each as a whole
process (``news-monitor match FILE``, start-up and output included, against
``regex_baseline.py FILE``) and in-process (a fresh ``Matcher`` over every
item, against the baseline's regexes over every item). The baseline is the
plain regex set one would write by hand (``regex_baseline.py``): per rule,
one case-insensitive, word-bounded alternation of its topic terms, one per
``require`` group and one of its exclusions; no ``near``, no distances, no
stems, no typos. Figures: median (min-max) items/s, and the per-run ratio
news-monitor / regex, its median.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from glob import glob
from pathlib import Path

import common
import regex_baseline
import yaml
from common import Stat

from monitor.match import Matcher
from monitor.rules import RuleSet, load_rules, shipped_rules_dir

SEED = "news-monitor-bench-v1"


def _words(text: str) -> list[str]:
    return text.split()


FILLER_EN = _words("""the a of to in and for on with said that by as at from its was has will is
have been were after over new year percent million billion government minister officials
company market prices week month data report analysts spokesman agency ministry deal
talks plans first state growth rates bank trade sector energy policy production capital
region border economy companies investors shares budget parliament president country
international national local record quarter demand supply service costs project plant
industry workers union court law public statement support reform increase decline higher
lower since while during against between under about more most than other some also
could would should may expected according told reporters on Tuesday on Monday last
next early late major key small large long short strong weak main financial political
security transport railway road port airport shipping logistics cargo container freight
water power electricity coal gas gold copper steel aluminium uranium fertiliser sugar
cotton meat milk technology software internet mobile telecom media election vote
campaign protest police army defence health hospital school university students climate
weather summer winter spring autumn tourism hotel flights visa migrants housing
construction loan bonds inflation currency dollar euro tenge rouble exchange stock index
profit revenue earnings output capacity contract tender investment fund partner joint
venture agreement memorandum visit summit meeting forum conference delegation""")

FILLER_RU = _words("""в и на с по для от что это как его года году млн млрд процентов правительство
министр компании рынок цены неделе месяце данные отчет аналитики заявил агентство
министерство сделка переговоры планы первый рост ставки банк торговля сектор энергетики
политика производство регион граница экономика инвесторы акции бюджет парламент
президент страна международный национальный рекорд квартал спрос предложение проект
завод промышленность рабочие суд закон заявление поддержка реформа увеличение снижение
транспорт железная дорога порт аэропорт перевозки грузы контейнеры вода электроэнергия
уголь газ золото медь сталь технологии интернет выборы протест полиция армия здоровье
школа университет климат погода туризм строительство кредит облигации инфляция валюта
доллар тенге рубль биржа прибыль выручка мощность контракт инвестиции фонд партнер
соглашение меморандум визит саммит встреча форум делегация""")

# Planted stories for the shipped rules: (rule, alias, context words to add).
PLANTS = [
    ("cpc-disruption", "Caspian Pipeline Consortium", "halts loadings after storm damage"),
    ("cpc-disruption", "CPC", "suspends oil loadings at Novorossiysk terminal after drone attack"),
    ("cpc-disruption", "Каспийского трубопроводного консорциума", "остановка отгрузки нефти"),
    ("btc-diversion", "Baku-Tbilisi-Ceyhan", "pipeline to carry more Kazakh crude"),
    ("btc-diversion", "BTC", "pipeline oil shipments from Kazakhstan rise"),
    ("eaeu-grain-ban", "wheat", "export ban extended by Kazakhstan"),
    ("eaeu-grain-ban", "пшеницы", "запрет на вывоз продлен Россия"),
    ("sanctioned-transit", "parallel imports", "through Kazakhstan to Russia"),
    ("sanctioned-transit", "dual-use goods", "re-exported to Russia via Kyrgyzstan"),
]

PLACES = _words("""Aberdeen Adelaide Algiers Amman Ankara Antwerp Athens Auckland Baghdad Bangkok
Barcelona Basra Beirut Belgrade Bergen Bogota Bordeaux Bremen Brisbane Bucharest Budapest
Cairo Calgary Cape Canberra Caracas Casablanca Chennai Chittagong Colombo Dakar Dhaka
Doha Dubai Dublin Durban Edmonton Gdansk Genoa Glasgow Gothenburg Guayaquil Hamburg
Hanoi Havana Helsinki Houston Istanbul Izmir Jakarta Jeddah Karachi Khartoum Kinshasa
Kolkata Lagos Lahore Leipzig Lima Lisbon Luanda Lusaka Lyon Madrid Manila Maputo
Marseille Melbourne Milan Mombasa Montreal Mumbai Muscat Nairobi Naples Nagoya Odessa
Osaka Oslo Panama Perth Porto Quito Rabat Riga Rotterdam Santiago Seville Sofia
Stavanger Surabaya Sydney Tallinn Tampa Tangier Tbilisi Tehran Tokyo Toronto Trieste
Tunis Valencia Vancouver Vilnius Warsaw Yokohama Zagreb Zurich""")

COMPANY_A = _words("""Atlas Nordic Pacific Orion Summit Vertex Sierra Delta Aurora Titan Apex
Horizon Meridian Polar Granite Crescent Falcon Phoenix Cobalt Zenith Pioneer Liberty
Sterling Harbor Evergreen Frontier Keystone Beacon Pinnacle Redwood""")
COMPANY_B = _words("""Steel Mining Energy Shipping Logistics Petroleum Chemicals Metals Grain
Fertilizers Telecom Motors Airlines Railways Cement Textiles Power Holdings Resources
Refining""")
EVENTS = _words("""strike strikes walkout shutdown shut halt halted halts closure closed suspend
suspended suspension outage outages blackout flood floods flooding fire fires blaze
explosion leak spill collapse protest protests blockade sanctions sanctioned embargo
tariff tariffs lawsuit fine fined probe investigation raid arrested detained bankrupt
bankruptcy default layoffs recall cyberattack hack hacked ransomware derailment
accident crash grounded delayed delays cancelled disrupted disruption""")


def _typo(word: str, rng: random.Random) -> str:
    """One letter dropped or doubled, anywhere, in a word of 7 letters or more."""
    if len(word) < 7:
        return word
    i = rng.randrange(len(word))
    return word[:i] + word[i + 1:] if rng.random() < 0.5 else word[:i] + word[i] + word[i:]


def make_items(n: int, rng: random.Random, extra_names: list[str]) -> tuple[list[dict], int]:
    """``n`` items; returns them and how many carry a planted shipped-rule story."""
    items: list[dict] = []
    planted = 0
    for k in range(n):
        russian = rng.random() < 0.2
        filler = FILLER_RU if russian else FILLER_EN

        def words(count: int, filler: list[str] = filler) -> str:
            return " ".join(rng.choice(filler) for _ in range(count))

        title = words(11).capitalize()
        summary = ". ".join(words(rng.randint(13, 16)).capitalize() for _ in range(4)) + "."
        plant = None
        typo = False
        r = rng.random()
        if r < 0.06:
            plant = rng.choice(PLANTS)
            _, alias, context = plant
            if rng.random() < 0.15:
                typo_alias = " ".join(_typo(w, rng) for w in alias.split())
                typo = typo_alias != alias
                alias = typo_alias
            title = f"{alias} {context}"[:120]
            planted += 1
        elif r < 0.16 and extra_names:
            name = rng.choice(extra_names)
            title = f"{name} {rng.choice(EVENTS)} {words(6)}"
        items.append({"id": f"b{k}", "title": title[:90], "summary": summary[:420],
                      "planted": plant[0] if plant else None, "typo": typo})
    return items, planted


def write_extra_rules(directory: Path, count: int, rng: random.Random) -> list[str]:
    """``count`` generated rule files shaped like the shipped ones; returns their names."""
    names: list[str] = []
    for k in range(count):
        terms: list[str] = []
        for _ in range(60):
            shape = rng.random()
            if shape < 0.4:
                term = f"{rng.choice(COMPANY_A)} {rng.choice(COMPANY_B)}"
            elif shape < 0.7:
                term = f"{rng.choice(PLACES)} {rng.choice(COMPANY_B)}"
            elif shape < 0.85:
                term = rng.choice(PLACES) + " " + rng.choice(["port", "refinery", "terminal",
                                                               "plant", "mine", "field"])
            else:  # acronyms, as real rules have them
                term = "".join(rng.choice("ABCDEFGHKLMNPRSTVZ") for _ in range(3))
            if term not in terms:
                terms.append(term)
        names.extend(t for t in terms[:20] if len(t) > 4)
        events = rng.sample(EVENTS, 50)
        lines = [f"id: generated-{k:03d}", f"title: Generated watch topic {k}",
                 "description: A generated rule for the matching benchmark.",
                 "severity: medium", "terms:"]
        lines += [f"  - {t}" for t in terms]
        for place in rng.sample(PLACES, 5):  # terms that count only near other words
            lines += [f"  - term: {place} authority",
                      "    near: [" + ", ".join(rng.sample(EVENTS, 8)) + "]", "    within: 10"]
        lines += ["require:", "  - name: event", "    within: 15", "    terms:"]
        lines += [f"      - {e}" for e in events]
        lines += ["exclude:"]
        for place in rng.sample(PLACES, 8):
            lines += [f"  - term: {place} festival", "    within: 5"]
        (directory / f"generated-{k:03d}.yaml").write_text("\n".join(lines) + "\n",
                                                           encoding="utf-8")
    return names


DEFAULT_CORPUS = str(common.REPO / "bench" / "data" / "articles-*.jsonl")
Item = tuple[str, str, str]  # id, title, summary


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_articles(pattern: str) -> list[dict]:
    """Every article of the files matching ``pattern`` (title, lede, body), in file order."""
    out: list[dict] = []
    for path in sorted(glob(pattern)):
        for k, rec in enumerate(read_jsonl(Path(path))):
            if rec.get("title") and (rec.get("lede") or rec.get("body")):
                out.append({"id": str(rec.get("id") or f"{Path(path).stem}-{k}"),
                            "title": rec["title"], "lede": rec.get("lede") or "",
                            "body": rec.get("body") or "", "lang": rec.get("lang") or "?"})
    return out


def _sentences(text: str) -> list[str]:
    """Sentences, cut after '.', '!' or '?' and a space (good enough for a mix)."""
    out: list[str] = []
    start = 0
    for k, ch in enumerate(text):
        if ch in ".!?" and (k + 1 == len(text) or text[k + 1] == " "):
            piece = text[start:k + 1].strip()
            if piece:
                out.append(piece)
            start = k + 1
    if text[start:].strip():
        out.append(text[start:].strip())
    return out


def generated_mix(n: int) -> list[Item]:
    """The generated mix (the items of issue 7's bench, unchanged: same seed, same draws)."""
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory() as tmp:  # drawn first, as it always was
        names = write_extra_rules(Path(tmp), 196, rng)
    items, _ = make_items(n, rng, names)
    return [(it["id"], it["title"], it["summary"]) for it in items]


def realistic_mix(articles: list[dict], n: int) -> list[Item]:
    """``n`` items: an article's title and 2-4 sentences in a row, the lede first or later."""
    rng = random.Random(f"{SEED}:realistic")
    texts = [_sentences(f"{a['lede']} {a['body']}".strip()) for a in articles]
    out: list[Item] = []
    for k in range(n):
        a = k % len(articles)
        sentences = texts[a]
        count = rng.randint(2, 4)
        start = 0 if k < len(articles) or rng.random() < 0.4 else \
            rng.randrange(max(1, len(sentences) - count + 1))
        out.append((f"r{k}", articles[a]["title"], " ".join(sentences[start:start + count])))
    return out


def body_mix(articles: list[dict], n: int, size: int = 3000) -> list[Item]:
    """``n`` items: an article's title and body, topped up to ~``size`` characters with the
    next articles of its language, cut at a sentence's end."""
    by_lang: dict[str, list[int]] = {}
    for k, a in enumerate(articles):
        by_lang.setdefault(a["lang"], []).append(k)
    out: list[Item] = []
    for k in range(n):
        a = k % len(articles)
        same = by_lang[articles[a]["lang"]]
        body = articles[a]["body"] or articles[a]["lede"]
        step = 1
        while len(body) < size and step <= len(same):
            other = articles[same[(same.index(a) + step) % len(same)]]
            body += " " + (other["body"] or other["lede"])
            step += 1
        if len(body) > size:
            cut = body.rfind(". ", 0, size)
            body = body[:cut + 1] if cut > size // 2 else body[:size]
        out.append((f"b{k}", articles[a]["title"], body))
    return out


# -- 200 rules -------------------------------------------------------------------

#: The share of a variant's topic terms kept as the shipped rule has them: topics
#: overlap a little, as a newsroom's rules do.
KEEP = 0.05
_POOL = PLACES + COMPANY_A + [w for w in FILLER_RU if len(w) >= 6]


def _vary(term: str, rng: random.Random) -> str:
    """The term with its longest word renamed after the pool (a '*' kept)."""
    words = term.split()
    k = max(range(len(words)), key=lambda i: len(words[i].strip("*")))
    star = "*" if words[k].endswith("*") else ""
    words[k] = rng.choice(_POOL) + star
    return " ".join(words)


def _vary_terms(terms: list, rng: random.Random) -> list:
    out: list = []
    seen: set[str] = set()
    for t in terms:
        text = t if isinstance(t, str) else t["term"]
        new = text if rng.random() < KEEP else _vary(text, rng)
        if new.lower() in seen:
            continue
        seen.add(new.lower())
        out.append(new if isinstance(t, str) else {**t, "term": new})
    return out


def write_variant_rules(directory: Path, count: int) -> None:
    """``count`` variants of the shipped rules (see the module docstring), deterministic."""
    rng = random.Random(f"{SEED}:variants")
    shipped = sorted(shipped_rules_dir().glob("*.yaml"))
    for k in range(count):
        path = shipped[k % len(shipped)]
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["id"] = f"{doc['id']}-v{k:03d}"
        doc["title"] = f"{doc['title']} (variant {k})"
        doc["terms"] = _vary_terms(doc["terms"], rng)
        (directory / f"variant-{k:03d}.yaml").write_text(
            yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


def large_rules(directory: Path, count: int = 196) -> RuleSet:
    """The shipped rules and ``count`` variants, written to ``directory`` and loaded."""
    for path in shipped_rules_dir().glob("*.yaml"):
        (directory / path.name).write_bytes(path.read_bytes())
    write_variant_rules(directory, count)
    return load_rules(directory)


# -- measuring -------------------------------------------------------------------


def write_items(path: Path, items: list[Item]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for key, title, summary in items:
            f.write(json.dumps({"id": key, "title": title, "summary": summary},
                               ensure_ascii=False) + "\n")
    return path


def in_process_nm(rules: RuleSet, items: list[Item]) -> tuple[float, int]:
    """Seconds to match every item with a fresh matcher, and the hits."""
    started = time.perf_counter()
    matcher = Matcher(rules)
    hits = sum(len(matcher.match(title, summary)) for _, title, summary in items)
    return time.perf_counter() - started, hits


def in_process_regex(rules: RuleSet, items: list[Item]) -> tuple[float, int]:
    started = time.perf_counter()
    baseline = regex_baseline.Baseline(rules)
    hits = sum(len(baseline.match(title, summary)) for _, title, summary in items)
    return time.perf_counter() - started, hits


def whole_nm(config: Path, file: Path) -> tuple[float, int]:
    run = common.run(common.nm_command(config, "match", str(file)), env=common.nm_env())
    return run.wall, run.out.count("\n")


def whole_regex(rules_dir: Path, file: Path) -> tuple[float, int]:
    run = common.run([sys.executable, str(Path(__file__).with_name("regex_baseline.py")),
                      str(rules_dir), str(file)], env=common.nm_env())
    return run.wall, run.out.count("\n")


def measure(label: str, mix: str, rules: RuleSet, rules_dir: Path, items: list[Item],
            work: Path, runs: int) -> dict[str, object]:
    file = write_items(work / f"{mix}.jsonl", items)
    config = common.write_config(work / f"{mix}-{len(rules)}.toml", [], db_url="sqlite://",
                                 rules_dir=rules_dir)
    got: dict[str, list[float]] = {k: [] for k in ("nm_whole", "re_whole", "nm_in", "re_in")}
    hits: dict[str, int] = {}
    for run in range(runs):
        order = [("nm", whole_nm, config, in_process_nm), ("re", whole_regex, rules_dir,
                                                            in_process_regex)]
        for tool, whole, arg, inproc in order if run % 2 == 0 else order[::-1]:
            seconds, n = whole(arg, file)  # type: ignore[operator]
            got[f"{tool}_whole"].append(len(items) / seconds)
            seconds, n_in = inproc(rules, items)
            got[f"{tool}_in"].append(len(items) / seconds)
            if n != n_in:
                raise AssertionError(f"{tool}: {n} hits in a process, {n_in} in-process")
            hits[tool] = n
        print(f"  {label}, {mix}, run {run + 1}/{runs}: news-monitor "
              f"{got['nm_whole'][-1]:,.0f} / {got['nm_in'][-1]:,.0f} items/s, regex "
              f"{got['re_whole'][-1]:,.0f} / {got['re_in'][-1]:,.0f} (whole / in-process)",
              flush=True)
    return {"runs": got, "hits": hits, "items": len(items)}


def _row(label: str, mix: str, r: dict) -> tuple[str, ...]:
    runs = r["runs"]
    whole = Stat.of([a / b for a, b in zip(runs["nm_whole"], runs["re_whole"], strict=True)])
    inproc = Stat.of([a / b for a, b in zip(runs["nm_in"], runs["re_in"], strict=True)])

    def rate(values: list[float]) -> str:
        return Stat.of(values).fmt(0)

    return (label, mix, f"{r['items']:,}", rate(runs["nm_whole"]), rate(runs["re_whole"]),
            f"**{whole.fmt()}** ×", rate(runs["nm_in"]), rate(runs["re_in"]),
            f"{inproc.fmt()} ×", f"{1000 * r['hits']['nm'] / r['items']:.0f} / "
            f"{1000 * r['hits']['re'] / r['items']:.0f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=DEFAULT_CORPUS,
                    help="article files (title, lede, body), a glob; default %(default)s")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--items", type=int, default=10_000, help="items of the generated mix")
    ap.add_argument("--realistic", type=int, default=20_000, help="items of the realistic mix")
    ap.add_argument("--bodies", type=int, default=2_000, help="items of 3 KB bodies")
    ap.add_argument("--mix", nargs="+", choices=("generated", "realistic", "bodies"),
                    default=["generated", "realistic", "bodies"])
    ap.add_argument("--rule-sets", nargs="+", choices=("4", "200"), default=["4", "200"])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    ap.add_argument("--json", metavar="PATH", help="also write every figure here")
    a = ap.parse_args()
    if a.smoke:
        a.items, a.realistic, a.bodies, a.runs = 200, 200, 20, 1
    print(f"machine: {common.machine()}")
    common.compile_checkout()
    articles = read_articles(a.corpus)
    mixes: dict[str, list[Item]] = {}
    if "generated" in a.mix:
        mixes["generated"] = generated_mix(a.items)
    for name in ("realistic", "bodies"):
        if name not in a.mix:
            continue
        if not articles:
            print(f"{name} mix: skipped: no article file matches {a.corpus} (--corpus PATTERN)")
            continue
        mixes[name] = (realistic_mix(articles, a.realistic) if name == "realistic"
                       else body_mix(articles, a.bodies))
    for name, items in mixes.items():
        lengths = sorted(len(s) for _, _, s in items)
        print(f"{name} mix: {len(items):,} items, median summary {lengths[len(lengths) // 2]:,} "
              f"characters")
    results: dict[str, dict] = {}
    rows = []
    with common.workdir("nm-bench-match-") as work:
        sets: list[tuple[str, RuleSet, Path]] = []
        if "4" in a.rule_sets:
            sets.append(("4 shipped rules", load_rules(shipped_rules_dir()), shipped_rules_dir()))
        if "200" in a.rule_sets:
            (work / "rules200").mkdir()
            large = large_rules(work / "rules200", 196 if not a.smoke else 16)
            sets.append((f"{len(large)} rules", large, work / "rules200"))
        for label, rules, rules_dir in sets:
            for mix, items in mixes.items():
                r = measure(label, mix, rules, rules_dir, items, work, a.runs)
                results[f"{label} {mix}"] = r
                rows.append(_row(label, mix, r))
    print(f"\n{a.runs} paired runs per row; Python {sys.version.split()[0]}\n")
    print(common.table(("rule set", "mix", "items", "news-monitor match, whole process, items/s",
                        "regex, whole process, items/s", "news-monitor / regex",
                        "news-monitor, in-process, items/s", "regex, in-process, items/s",
                        "in-process ratio", "hits per 1,000 items (news-monitor / regex)"),
                       rows))
    common.save_json(a.json, {"machine": common.machine(), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
