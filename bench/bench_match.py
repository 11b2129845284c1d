"""Matching throughput of monitor.match on one core: the 4 shipped rules, then 200 rules.

Run from the repository root::

    PYTHONPATH=. .venv/bin/python bench/bench_match.py            # 10,000 items, 5 runs
    PYTHONPATH=. .venv/bin/python bench/bench_match.py --smoke    # tiny sizes, for CI

Items are generated deterministically (seed below): English news-like titles
(~75 characters) and summaries (~400 characters), one in five in Russian.
About 6 % carry a planted story for a shipped rule (its name, typed exactly,
inflected, or with one letter dropped or doubled anywhere in its long words,
plus the context the rule asks for), and about 10 % a name from one of the
generated rules.

The 200-rule set is the 4 shipped rules plus 196 generated rule files of about
their size and shape (60 names, 5 terms with ``near``, 50 words required close
by, 8 exclusions: 123 terms each, where the shipped rules average 128),
written to a temporary folder and loaded with ``monitor.rules.load_rules``
like any rule folder.

Each run builds a fresh Matcher (so its word memo starts cold) and matches
every item; the table gives median, min and max items/s over the runs, and a
"warm" row for a second pass with the same matcher, as in the daemon.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from monitor.match import Matcher
from monitor.rules import RuleSet, load_rules
from monitor.settings import shipped_rules_dir

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


def measure(rules: RuleSet, items: list[dict], runs: int) -> dict[str, object]:
    cold: list[float] = []
    warm: list[float] = []
    builds: list[float] = []
    for _ in range(runs):
        t = time.perf_counter()
        matcher = Matcher(rules)
        builds.append(time.perf_counter() - t)
        t = time.perf_counter()
        found = [matcher.match(it["title"], it["summary"]) for it in items]
        cold.append(len(items) / (time.perf_counter() - t))
        t = time.perf_counter()
        for it in items:
            matcher.match(it["title"], it["summary"])
        warm.append(len(items) / (time.perf_counter() - t))
        hit = [bool(it["planted"]) and any(h.rule_id == it["planted"] for h in hits)
               for it, hits in zip(items, found, strict=True)]
    return {"cold": cold, "warm": warm, "build": builds, "planted_found": sum(hit),
            "typos_found": sum(h for h, it in zip(hit, items, strict=True) if it["typo"]),
            "alerts": sum(len(h) for h in found)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    a = ap.parse_args()
    if a.smoke:
        a.items, a.runs = 300, 1
    if hasattr(os, "sched_setaffinity"):  # one core, as the target says
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rng = random.Random(SEED)
    shipped = load_rules(shipped_rules_dir())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        extra_names = write_extra_rules(folder, 196 if not a.smoke else 20, rng)
        for path in shipped_rules_dir().glob("*.yaml"):
            (folder / path.name).write_bytes(path.read_bytes())
        large = load_rules(folder)
    items, planted = make_items(a.items, rng, extra_names)
    title_len = statistics.median(len(it["title"]) for it in items)
    summary_len = statistics.median(len(it["summary"]) for it in items)
    print(f"{len(items)} items (median title {title_len:.0f} chars, summary {summary_len:.0f}), "
          f"{planted} with a planted shipped-rule story; {a.runs} runs; "
          f"Python {sys.version.split()[0]}")
    print()
    print("| rule set | figure | median | min | max |")
    print("|---|---|---|---|---|")
    for label, rules in ((f"{len(shipped)} shipped rules", shipped),
                         (f"{len(large)} rules", large)):
        r = measure(rules, items, a.runs)
        for name, unit in (("cold", "items/s"), ("warm", "items/s")):
            values = r[name]
            assert isinstance(values, list)
            print(f"| {label} | {name} match, {unit} | {statistics.median(values):,.0f} | "
                  f"{min(values):,.0f} | {max(values):,.0f} |")
        builds = r["build"]
        assert isinstance(builds, list)
        print(f"| {label} | compile, s | {statistics.median(builds):.3f} | {min(builds):.3f} | "
              f"{max(builds):.3f} |")
        typos = sum(1 for it in items if it["typo"])
        print(f"| {label} | planted stories found | {r['planted_found']} / {planted} | | |")
        print(f"| {label} | ... of them with a typo | {r['typos_found']} / {typos} | | |")
        print(f"| {label} | alerts per 1,000 items | {1000 * r['alerts'] / len(items):.1f} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
