"""Which reports are one story: placement at store time (``place``, its PLACE table),
and the digest's same-script title test for hits without a stored story
(``same_story`` / ``cluster``, its THRESHOLDS table). Pure; reads the shared dev
corpus when present."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hits import hit

from monitor import stories
from monitor.models import Report, StoredHit

SHARED = Path(__file__).resolve().parents[2] / "shared"

def H(title: str, summary: str = "", hours: float = 0.0, link: str | None = "auto") -> StoredHit:
    return hit(title, summary, hours=hours, link=link)


_LEDE = ("The Caspian Pipeline Consortium said on Tuesday it had suspended oil loadings at its "
         "Black Sea terminal near Novorossiysk after a storm damaged one of its moorings.")
_BANK = ("The lender was accused of helping Russian companies move payments for goods "
         "subject to export controls through accounts in Bishkek.")

#: Paired cases for each row of stories.THRESHOLDS and each veto: (why, a, b, same story?).
#: same_story is the digest's test for hits without a stored story, and one of
#: placement's sure joins.
CLUSTER_CASES = [
    ("title_overlap: an outlet suffix",
     H("Drone strike halts loadings at CPC terminal near Novorossiysk"),
     H("Drone strike halts loadings at CPC terminal near Novorossiysk - Reuters"), True),
    ("title_overlap: one word apart, opposite events",
     H("CPC halts loadings at Novorossiysk after storm"),
     H("CPC resumes loadings at Novorossiysk after storm"), False),
    ("word_prefix / word_ratio: an inflection and a typo",
     H("Kazakhstan diverts 1.5 mln t of crude to BTC after Caspian Pipeline outage"),
     H("Kazakhstan to divert 1.5 mln t of crude via BTC after Caspian Pipline outage"), True),
    ("word_prefix / word_ratio: words alike at the start are not the same",
     H("CPC halts oil loadings at Novorossiysk terminal"),
     H("CPC halves oil loadings at Novorossiysk terminal"), False),
    ("outlet suffixes are not names",
     H("Drone strike halts loadings at CPC terminal near Novorossiysk - Interfax"),
     H("Drone strike halts loadings at CPC terminal near Novorossiysk | Kursiv"), True),
    ("outlet suffixes, their pair: a lower-case tail belongs to the headline",
     H("Kazakhstan oil exports to rise - analysts"),
     H("Kazakhstan oil exports to rise - ministry"), False),
    ("wire tags are not words",
     H("UPDATE 2-Storm forces CPC to suspend tanker loadings"),
     H("Storm forces CPC to suspend tanker loadings at Black Sea terminal", hours=3), True),
    ("summary_ratio: a rewritten headline over the same lede",
     H("CPC says loadings suspended after storm damages mooring", _LEDE),
     H("Storm damage halts Caspian pipeline exports", _LEDE.replace("moorings.", "moorings, "
                                                                    "the consortium said.")),
     True),
    ("summary_ratio: a different lede under a similar headline",
     H("CPC says loadings suspended after storm damages mooring", _LEDE),
     H("Storm damage halts Caspian pipeline exports",
       "Kazakhstan's oil exports through the Caspian Pipeline Consortium fell by a fifth in "
       "March, the energy ministry said, citing maintenance at Tengiz."), False),
    ("veto: each title names someone the other never mentions",
     H("UK sanctions Kyrgyz lender Keremet Bank", _BANK),
     H("US sanctions Kyrgyz lender Keremet Bank", _BANK), False),
    ("veto, its pair: a name the other does mention",
     H("UK sanctions Kyrgyz lender Keremet Bank", _BANK),
     H("Britain's UK sanctions Kyrgyz lender Keremet Bank", _BANK), True),
    ("veto: different numbers in the titles",
     H("Russia sets grain export quota for February-June at 24 mln t, keeps durum wheat ban"),
     H("Russia sets grain export quota for February-June at 25.5 mln t, keeps durum wheat ban"),
     False),
    ("numbers, their pair: the same numbers written two ways",
     H("Kazakhstan ships 390,000 t of oil via Druzhba to Germany in March"),
     H("Kazakhstan ships 390 000 t of oil via Druzhba to Germany in March"), True),
    ("window_hours: the same headline three days later is a follow-up",
     H("Storm forces CPC to suspend tanker loadings"),
     H("Storm forces CPC to suspend tanker loadings", hours=72), False),
    ("window_hours, its pair: within two days",
     H("Storm forces CPC to suspend tanker loadings"),
     H("Storm forces CPC to suspend tanker loadings", hours=40), True),
    ("cross_names: Russian and English versions sharing names",
     H("Drone attack halts CPC loadings at Novorossiysk, Tengizchevroil cuts output",
       "The Caspian Pipeline Consortium stopped loadings; Kazakhstan's Tengizchevroil reduced "
       "production."),
     H("Атака дронов остановила отгрузки КТК в Новороссийске, Тенгизшевройл снижает добычу",
       "Каспийский трубопроводный консорциум приостановил отгрузки, Тенгизшевройл в "
       "Казахстане сократил добычу."), True),
    ("cross_title_names: sharing only common names (a country, a port) is not enough",
     H("Drone strike hits CPC pumping station",
       "Kazakhstan said oil flows via the Caspian Pipeline Consortium to Novorossiysk fell."),
     H("Казахстан увеличит поставки по КТК в Новороссийск",
       "Казахстан и Каспийский трубопроводный консорциум договорились о росте прокачки."),
     False),
    ("cross-script numbers: 1.2 mln t either way",
     H("Kazakhstan to ship 1.2 mln t of oil to Germany via Druzhba"),
     H("Казахстан отправит 1,2 млн т нефти в Германию по Дружбе"), True),
    ("one article reached through two feeds: the same link",
     H("Headline one way", link="https://same.example/a"),
     H("Entirely other words", link="https://same.example/a"), True),
]


@pytest.mark.parametrize(("why", "a", "b", "same"), CLUSTER_CASES,
                         ids=[c[0] for c in CLUSTER_CASES])
def test_same_story_pairs(why: str, a: StoredHit, b: StoredHit, same: bool) -> None:
    assert stories.same_story(a, b) is same
    assert stories.same_story(b, a) is same


def test_clusters_are_not_chained_through_a_vague_member() -> None:
    a = H("Russia sets grain export quota for February-June at 24 mln t, keeps durum wheat ban")
    vague = H("Russia sets grain export quota for February-June, keeps durum wheat ban", hours=1)
    c = H("Russia sets grain export quota for February-June at 25.5 mln t, keeps durum wheat ban",
          hours=2)
    groups = stories.cluster([a, vague, c])
    assert not any({a.id, c.id} <= {h.id for h in g} for g in groups)


def test_the_dev_corpus_stays_two_hundred_stories() -> None:
    """200 distinct stories in three languages, many on the same topics, all dated
    alike (so the time window helps nothing): not one pair may merge."""
    corpus = SHARED / "corpus" / "dev.jsonl"
    if not corpus.is_file():
        pytest.skip("../shared/corpus is not available")
    records = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()
               if line.strip()]
    hits = [hit(r["title"], r.get("summary") or "", feed=r.get("source") or "x", link=None)
            for r in records]
    groups = stories.cluster(hits)
    merged = [[h.title for h in g] for g in groups if len(g) > 1]
    assert merged == []




# -- placement: which stored story a new report joins -----------------------------------

T = datetime(2026, 1, 2, 3, 0, tzinfo=UTC)
_STORM_EN = ("The Caspian Pipeline Consortium said a storm damaged two of its three single "
             "point moorings near Novorossiysk; tanker loadings go through one mooring.")
_STORM_RU = ("Каспийский трубопроводный консорциум сообщил, что шторм повредил два из трёх "
             "выносных причальных устройств под Новороссийском; танкеры грузятся через одно.")
_SANCTIONS = ("The measures target firms in Kazakhstan and Kyrgyzstan accused of re-exporting "
              "machine tools and electronic components to Russia.")


def R(title: str, summary: str = "", *, hours: float = 0.0, link: str | None = None) -> Report:
    R.n += 1  # type: ignore[attr-defined]
    return Report(item_id=R.n, title=title, summary=summary, link=link,  # type: ignore[attr-defined]
                  published=T + timedelta(hours=hours))


R.n = 1000  # type: ignore[attr-defined]


def hitting(report: Report, *rules: str) -> Report:
    """``report`` as a poll stores it: with the rules it hit."""
    return replace(report, rules=rules)


def joins(story: list[Report], new: Report) -> bool:
    """Does ``new`` join the stored story of ``story``'s reports?"""
    sid = story[0].item_id
    [got] = stories.place([new], [replace(r, story=sid) for r in story])
    return got == sid


#: Paired cases for each row of stories.PLACE and each penalty: (why, a story's
#: reports, a new report, joins it?). A change to PLACE updates a case here.
PLACE_CASES = [
    ("join: one event in English and in Russian",
     [R("Storm damages CPC moorings, halting tanker loadings at Novorossiysk", _STORM_EN)],
     R("Шторм повредил причалы КТК, отгрузка танкеров в Новороссийске остановлена",
       _STORM_RU), True),
    ("join, its pair: the same terminal, another event",
     [R("Storm damages CPC moorings, halting tanker loadings at Novorossiysk", _STORM_EN)],
     R("КТК отчитался о рекордной отгрузке нефти за год",
       "Консорциум отгрузил через терминал под Новороссийском рекордный объём нефти."),
     False),
    ("join and Kazakh: the same storm",
     [R("Storm damages CPC moorings, halting tanker loadings at Novorossiysk", _STORM_EN)],
     R("Дауыл КҚК терминалындағы екі айлақ құрылғысын зақымдады",
       "Новороссийск маңындағы КҚК терминалында дауыл салдарынан танкерлерге мұнай тиеу "
       "тоқтатылды."), True),
    ("best_factor: a story's one alike report is enough",
     [R("Storm damages CPC moorings, halting tanker loadings at Novorossiysk", _STORM_EN),
      R("Kazakhstan counts the cost of lower oil exports",
        "The energy ministry said producers may cut output.")],
     R("Шторм повредил причалы КТК, отгрузка танкеров в Новороссийске остановлена",
       _STORM_RU), True),
    ("min_shared: one place name in common is no evidence",
     [R("Astana hosts regional summit")],
     R("Earthquake shakes Almaty and Astana"), False),
    ("min_shared, its pair: three shared keys are",
     [R("Kazakhstan bans wheat imports by road")],
     R("Казахстан запретил ввоз пшеницы автотранспортом"), True),
    ("title_weight: the headlines tell one event, the summaries other things",
     [R("CPC halts loadings after storm damages moorings",
        "Brent rose in London as traders weighed supply risks; analysts at two banks raised "
        "their price forecasts for the quarter.")],
     R("Шторм повредил причалы КТК, отгрузка остановлена",
       "Казахстанские нефтяники готовят альтернативные маршруты через Каспий и Баку, "
       "заявили в министерстве энергетики."), True),
    ("title_weight, its pair: the summaries tell one event, the headlines two",
     [R("Kazakhstan weighs alternative oil routes via Caspian and Baku",
        "Brent rose in London as traders weighed supply risks after storm damage to CPC "
        "moorings halted loadings.")],
     R("Казахстан оценивает ущерб после шторма на причалах КТК",
       "Отгрузка нефти через причалы КТК остановлена после шторма, цены на нефть выросли."),
     False),
    ("window_hours: the same words four days later are a follow-up",
     [R("Storm damages CPC moorings, halting tanker loadings at Novorossiysk", _STORM_EN)],
     R("Шторм повредил причалы КТК, отгрузка танкеров в Новороссийске остановлена",
       _STORM_RU, hours=96), False),
    ("window_hours, its pair: within three days",
     [R("Storm damages CPC moorings, halting tanker loadings at Novorossiysk", _STORM_EN)],
     R("Шторм повредил причалы КТК, отгрузка танкеров в Новороссийске остановлена",
       _STORM_RU, hours=60), True),
    ("numbers: two months' volumes, no number in common",
     [R("BTC pumped 536,000 tons of Kazakh oil in five months")],
     R("По БТД прокачано 651 тыс. тонн казахстанской нефти за пять месяцев"), False),
    ("numbers: 30 % and 380,000 barrels count two things, no conflict",
     [R("Drone attack on CPC pumping station cuts Kazakh oil flows by 30%",
        "Drones struck the Kropotkinskaya pumping station of the Caspian Pipeline Consortium.")],
     R("Атака на КТК: Казахстан может потерять до 380 тысяч баррелей в сутки",
       "После атаки беспилотников на НПС «Кропоткинская» прокачка по КТК снизится."), True),
    ("numbers, their pair: 536 тыс. тонн is 536,000 tons",
     [R("BTC pumped 536,000 tons of Kazakh oil in five months")],
     R("По БТД прокачано 536 тыс. тонн казахстанской нефти за пять месяцев"), True),
    ("development: loadings resumed is not loadings halted",
     [R("CPC halts tanker loadings at Novorossiysk after storm damages moorings", _STORM_EN)],
     R("КТК возобновил отгрузку танкеров в Новороссийске после шторма", _STORM_RU), False),
    ("development, its pair: a fine instead of the suspension, told twice",
     [R("Russian court lifts CPC suspension, imposes fine instead",
        "A regional court replaced the 30-day suspension of the Caspian Pipeline Consortium "
        "with a fine of 200,000 roubles.")],
     R("Суд заменил приостановку работы КТК штрафом",
       "Краевой суд заменил 30-дневную приостановку деятельности Каспийского "
       "трубопроводного консорциума штрафом в 200 тысяч рублей."), True),
    ("development: a quota raised is a quota eased (raises, eases the cap)",
     [R("Kazakhstan raises flour export quota to 500,000 tons")],
     R("Kazakhstan eases flour export cap after millers lobby government"), True),
    ("development, its pair: the quota set is not the quota eased",
     [R("Kazakhstan sets flour export quota until mid-June")],
     R("Kazakhstan eases flour export cap after millers lobby government"), False),
    ("development: an unplanned inspection (жоспардан тыс) is no plan",
     [R("Russia starts unscheduled inspection at CPC terminal")],
     R("Ресей КҚК терминалында жоспардан тыс тексеріс бастады"), True),
    ("development: a ban scrapped is not the ban",
     [R("Kazakhstan bans wheat imports by road")],
     R("Kazakhstan scraps ban on wheat imports by road"), False),
    ("development, its pair: scraps is снимает",
     [R("Kazakhstan scraps ban on wheat imports by road")],
     R("Казахстан снимает запрет на ввоз пшеницы автотранспортом"), True),
    ("development: a ban extended is not the ban",
     [R("Kazakhstan bans wheat imports by road for six months")],
     R("Kazakhstan extends ban on wheat imports by road for six months"), False),
    ("development: a ban proposed is not a ban imposed",
     [R("Kyrgyzstan bans wheat and flour exports for six months")],
     R("Кыргызстан может на полгода запретить вывоз пшеницы и муки"), False),
    ("conflict, powers: the UK and the US sanctioning the same firms",
     [R("UK sanctions Kazakh and Kyrgyz firms over Russia re-exports", _SANCTIONS)],
     R("США ввели санкции против казахстанских и кыргызских компаний за реэкспорт в Россию",
       _SANCTIONS), False),
    ("conflict, powers, their pair: the UK in English and in Russian",
     [R("UK sanctions Kazakh and Kyrgyz firms over Russia re-exports", _SANCTIONS)],
     R("Великобритания ввела санкции против казахстанских и кыргызских компаний за "
       "реэкспорт в Россию", _SANCTIONS), True),
    ("conflict, countries: Kazakhstan's ban is not Kyrgyzstan's",
     [R("Kazakhstan bans wheat and flour exports for six months")],
     R("Кыргызстан запретил вывоз пшеницы и муки на шесть месяцев"), False),
    ("conflict, countries, their pair: Kazakhstan's in Russian",
     [R("Kazakhstan bans wheat and flour exports for six months")],
     R("Казахстан запретил вывоз пшеницы и муки на шесть месяцев"), True),
    ("conflict, goods, their pair: one measure on two goods, each title naming one",
     [R("Russia bans barley exports to EAEU until June",
        "The government also banned exports of wheat and maize.")],
     R("Russia bans wheat exports to EAEU until June", "Barley and maize exports are banned too."),
     True),
    ("conflict, goods: eggs are goods of their own (яйца)",
     [R("Kazakhstan bans wheat exports for six months")],
     R("Казахстан на полгода запретил вывоз куриных яиц"), False),
    ("conflict, goods, their pair: eggs in English and in Russian",
     [R("Kazakhstan bans egg exports for six months")],
     R("Казахстан на полгода запретил вывоз куриных яиц"), True),
    ("conflict, ways: a ban on imports is not a ban on exports",
     [R("Kazakhstan bans wheat imports by road for six months")],
     R("Kazakhstan bans wheat exports by road for six months"), False),
    ("conflict, goods: a ban on barley is not a ban on wheat",
     [R("Kazakhstan bans wheat exports for six months")],
     R("Kazakhstan bans barley exports for six months"), False),
    ("conflict, domains: oil and grain sharing a number",
     [R("Kazakhstan to ship 20 mln t of oil a year via BTC")],
     R("Russia sets 20 mln t grain export quota for 2026"), False),
    ("conflict, objects: a pumping station is not a mooring",
     [R("Drone attack damages CPC pumping station")],
     R("Drone attack damages CPC mooring at Novorossiysk"), False),
    ("conflict, sites: an attack on one pumping station is not one on another",
     [R("Drone attack hits Kropotkinskaya pumping station of the CPC",
        "Drones struck the Kropotkinskaya station of the Caspian Pipeline Consortium in the "
        "Krasnodar region, cutting flows.")],
     R("Беспилотники атаковали НПС «Кавказская» КТК",
       "Атаке подверглась нефтеперекачивающая станция «Кавказская» Каспийского "
       "трубопроводного консорциума, прокачка снижена.", hours=48), False),
    ("conflict, sites, their pair: the same station named in Russian",
     [R("Drone attack hits Kropotkinskaya pumping station of the CPC",
        "Drones struck the Kropotkinskaya station of the Caspian Pipeline Consortium in the "
        "Krasnodar region, cutting flows.")],
     R("Беспилотники атаковали НПС «Кропоткинская» КТК",
       "Атаке подверглась нефтеперекачивающая станция «Кропоткинская» Каспийского "
       "трубопроводного консорциума, прокачка снижена.", hours=6), True),
    ("conflict, sites: a quoted Cyrillic name beside the station (НПС «Кавказская»)",
     [R("Drone attack hits Kropotkinskaya pumping station of the CPC")],
     R("«Кавказская» шабуылы: КҚК стансасы тоқтады",
       "«Кавказская» стансасын жөндеуге екі ай кетуі мүмкін."), False),
    ("conflict, sites, their pair: an unquoted Cyrillic name beside it is no site (Новак "
     "стансаны...)",
     [R("Drone attack hits Kropotkinskaya pumping station of the CPC")],
     R("«Кропоткинская» шабуылы: КҚК стансасы тоқтады",
       "Новак стансаны жөндеуге екі ай кетуі мүмкін екенін айтты."), True),
    ("conflict, sites, their pair: a capital spoken to is no site (concern to Kyiv)",
     [R("Kazakhstan voices concern over CPC strike at talks in Astana")],
     R("Kazakhstan voices concern to Kyiv over CPC strike"), True),
    ("conflict, sites: titles naming two moorings by number (SPM-2, ВПУ-1)",
     [R("CPC resumes loadings at SPM-2 after repairs")],
     R("КТК возобновил отгрузку нефти через ВПУ-1 после ремонта"), False),
    ("conflict, sites, their pair: one mooring (SPM-2, ВПУ-2)",
     [R("CPC resumes loadings at SPM-2 after repairs")],
     R("КТК возобновил отгрузку нефти через ВПУ-2 после ремонта"), True),
    ("conflict, objects: a terminal is not a pumping station",
     [R("Drone attack hits CPC pumping station")],
     R("Атака беспилотников на терминал КТК"), False),
    ("conflict, objects, their pair: a mooring is at the terminal",
     [R("Sea drones damage mooring at CPC terminal")],
     R("Атака беспилотников на терминал КТК"), True),
    ("conflict, objects: sanctions on a bank are not sanctions on firms",
     [R("US sanctions firms in Kazakhstan and Kyrgyzstan over Russia supplies")],
     R("Минфин США ввел санкции против кыргызского банка за поставки в Россию"), False),
    ("conflict, objects, their pair: the bank in English and in Russian",
     [R("US sanctions Kyrgyz bank over Russia payments")],
     R("Минфин США ввел санкции против кыргызского банка за платежи России"), True),
    ("conflict, causes: a fine's blow (штрафной удар) is no attack",
     [R("Russian court fines CPC over oil spill")],
     R("Штрафной удар по КТК за разлив нефти"), True),
    ("conflict, causes, their pair: a blow (удар) at the terminal is an attack",
     [R("Russian court fines CPC over oil spill")],
     R("Удар по терминалу КТК: отгрузка остановлена"), False),
    ("conflict, causes: drone components are goods, not an attack",
     [R("Kazakh court fines firm for re-exporting parts to Russia")],
     R("Kazakh firm fined for re-exporting drone components to Russia"), True),
    ("conflict, causes, their pair: a drone attack is one",
     [R("Kazakh court fines firm for re-exporting parts to Russia")],
     R("Kazakh firm fined after drone attack on Russia"), False),
    ("conflict, causes: a storm is not a drone attack",
     [R("CPC halts loadings at Novorossiysk after storm damages mooring")],
     R("КТК остановил отгрузку в Новороссийске после атаки беспилотников на причал"), False),
    ("conflict, causes, their pair: the storm in Russian",
     [R("CPC halts loadings at Novorossiysk after storm damages mooring")],
     R("КТК остановил отгрузку в Новороссийске после шторма, повредившего причал"), True),
    ("conflict, months: March and June exports",
     [R("Kazakh oil exports via BTC rose in March")],
     R("Экспорт казахстанской нефти по БТД вырос в июне"), False),
    ("conflict, months, their pair: March in Russian",
     [R("Kazakh oil exports via BTC rose in March")],
     R("Экспорт казахстанской нефти по БТД вырос в марте"), True),
    ("development: 'may ban' is a proposal (not the month)",
     [R("Kazakhstan bans wheat exports for six months")],
     R("Kazakhstan may ban wheat exports for six months"), False),
    ("conflict, months: 'in May' is the month",
     [R("Kazakh oil exports via BTC rose in May")],
     R("Экспорт казахстанской нефти по БТД вырос в июне"), False),
    ("conflict, months, their pair: May in Russian",
     [R("Kazakh oil exports via BTC rose in May")],
     R("Экспорт казахстанской нефти по БТД вырос в мае"), True),
    ("conflict, years: the same words, two years named",
     [R("CPC halts loadings after storm damages moorings",
        "The Caspian Pipeline Consortium said the storm of March 2022 hit two moorings.")],
     R("КТК остановил отгрузку после шторма, повредившего причалы",
       "Каспийский трубопроводный консорциум сообщил о шторме в декабре 2025 года."), False),
    ("conflict, years, their pair: one year",
     [R("CPC halts loadings after storm damages moorings",
        "The Caspian Pipeline Consortium said the storm of March 2022 hit two moorings.")],
     R("КТК остановил отгрузку после шторма, повредившего причалы",
       "Каспийский трубопроводный консорциум сообщил о шторме в марте 2022 года."), True),
    ("development, milestone: the first cargo is not the deal",
     [R("Kazakh oil to be shipped via BTC pipeline",
        "KazMunayGas and SOCAR agreed to ship Kazakh crude from Aktau to Baku."),
      R("КМГ и SOCAR договорились об отгрузке нефти по БТД")],
     R("First cargo of Kazakh oil shipped via BTC pipeline",
       "A tanker carried Kazakh crude from Aktau to Baku."), False),
    ("development, milestone, its pair: a later report may leave 'first' out",
     [R("First cargo of Kazakh oil heads for BTC pipeline"),
      R("Первая партия казахстанской нефти отправлена в БТД")],
     R("Kazakh oil cargo heads for BTC pipeline"), True),
    ("development, stages: the deal's title and the first cargo's (the deal told when "
     "shipments start)",
     [R("SOCAR and KazMunayGas sign deal on Kazakh oil transit via BTC",
        "The first shipments of Kazakh crude are to start in January.")],
     R("KazMunayGas and SOCAR ship first Kazakh oil via BTC",
       "Kazakh crude transit via BTC began in January."), False),
    ("development, stages, their pair: the deal told with its first shipments",
     [R("SOCAR and KazMunayGas sign deal on Kazakh oil transit via BTC",
        "The first shipments of Kazakh crude are to start in January.")],
     R("КМГ и SOCAR подписали соглашение о транзите нефти по БТД, первые поставки в январе"),
     True),
    ("development, milestone: the first half is a date",
     [R("BTC pumped 651,000 tons of Kazakh oil in six months")],
     R("По БТД в первом полугодии прокачано 651 тыс. тонн казахстанской нефти"), True),
    ("development: a modal before no measure is no proposal (exports may fall)",
     [R("CPC halts loadings at Novorossiysk after storm damages moorings", _STORM_EN)],
     R("Экспорт казахстанской нефти через КТК может упасть из-за шторма", _STORM_RU), True),
    ("development, its pair: a modal before a measure is (a ban may be lifted)",
     [R("Kazakhstan bans wheat imports by road for six months")],
     R("Kazakhstan could lift ban on wheat imports by road"), False),
    ("conflict, causes: a halt that will hit the budget is no attack (ударит, not удар)",
     [R("Russian court orders CPC to halt operations for 30 days")],
     R("Остановка КТК на 30 дней ударит по экспорту нефти"), True),
    ("conflict, causes, their pair: a drone strike (удар) is an attack",
     [R("CPC halts loadings at Novorossiysk after storm damages moorings")],
     R("КТК остановил отгрузку в Новороссийске после удара беспилотников по причалу"), False),
    ("development: back in service (вернулся в строй, қайта) is resumed",
     [R("CPC halts loadings at Novorossiysk after storm damages moorings", _STORM_EN)],
     R("КТК вернулся в строй после шторма", _STORM_RU), False),
    ("development, its pair: the Kazakh restart (қайта басталды) is no first",
     [R("CPC resumes loadings at SPM-1 after storm repairs")],
     R("КҚК терминалында ВПУ-1 арқылы мұнай тиеу қайта басталды"), True),
    ("development: out of order (істен шықты) is no withdrawal",
     [R("Storm damages two CPC moorings at Novorossiysk", _STORM_EN)],
     R("Дауыл салдарынан КҚК терминалындағы екі айлақ істен шықты"), True),
    ("development, its pair: a withdrawal is one",
     [R("Russia signs grain supply deal with Kazakhstan")],
     R("Russia withdraws from grain supply deal with Kazakhstan"), False),
    ("development: a transit allowed is not the ban it passes",
     [R("Kazakhstan bans Russian wheat imports for six months")],
     R("Казахстан разрешил транзит российской пшеницы несмотря на запрет ввоза"), False),
    ("development, its pair: allowed (разрешил) in English and in Russian",
     [R("Kazakhstan allows Russian wheat transit to Central Asia")],
     R("Казахстан разрешил транзит российской пшеницы в Центральную Азию"), True),
    ("development: a complaint lodged (пожаловался) is not the ban complained of",
     [R("Russia bans grain exports to EAEU countries")],
     R("Минсельхоз РФ пожаловался в ЕЭК на запрет экспорта зерна"), False),
    ("development, its pair: the complaint in English and in Russian",
     [R("Russian ministry complains to EEC over Kazakh grain ban")],
     R("Минсельхоз РФ пожаловался в ЕЭК на казахстанский запрет на ввоз зерна"), True),
    ("development: a route weighed (eyes, рассматривает) is not the attack it follows",
     [R("Drone attack on CPC pumping station cuts Kazakh oil flows")],
     R("Kazakhstan eyes more oil via BTC after CPC station attack"), False),
    ("development, its pair: eyes is рассматривает",
     [R("Kazakhstan eyes more oil via BTC after CPC station attack")],
     R("Казахстан рассматривает отправку нефти по БТД после атаки на станцию КТК"), True),
    ("development: 'could ban' is a proposal",
     [R("Kazakhstan bans Russian wheat imports by truck")],
     R("Kazakhstan could ban Russian wheat imports using trucks"), False),
    ("vocabulary: a short entry of one script is no word of the other ('using' is not "
     "ұсын, propose)",
     [R("Kazakhstan bans Russian wheat imports by truck")],
     R("Kazakhstan bans Russian wheat imports using trucks"), True),
    ("vocabulary: 'sharp' is not США",
     [R("US sanctions Kazakh firms over Russia supplies")],
     R("Sharp rise in Kazakh firms' supplies to Russia"), False),
    ("development, its pair: a warning is what a visit's talks say",
     [R("EU envoy discusses re-exports to Russia in Bishkek")],
     R("EU envoy warns Kyrgyzstan over re-exports to Russia"), True),
    ("development: a purchase (to buy tankers) is not the route's deal",
     [R("SOCAR and KazMunayGas sign deal to ship Kazakh oil from Aktau to Baku")],
     R("KazMunayGas to buy new tankers to ship oil from Aktau to Baku"), False),
    ("development, its pair: to buy is сатып алады",
     [R("KazMunayGas to buy new tankers to ship oil from Aktau to Baku")],
     R("ҚМГ Ақтаудан Бакуге мұнай тасу үшін жаңа танкерлер сатып алады"), True),
    ("development: a warning is not sanctions",
     [R("US sanctions Kyrgyz banks over Russia sanctions evasion")],
     R("US warns Kyrgyz banks over Russia sanctions evasion"), False),
    ("conflict, countries: a capital is its country (Bishkek / Kyrgyzstan)",
     [R("Kazakhstan bans wheat and flour exports for six months")],
     R("Бишкек запретил вывоз пшеницы и муки на шесть месяцев"), False),
    ("conflict, countries, their pair: Bishkek is Kyrgyzstan",
     [R("Kyrgyzstan bans wheat and flour exports for six months")],
     R("Бишкек запретил вывоз пшеницы и муки на шесть месяцев"), True),
    ("conflict, countries: a country after the measure acts (Запрет России: Russia's ban)",
     [R("Kazakhstan bans grain imports from Russia by road")],
     R("Запрет России на ввоз зерна из Казахстана"), False),
    ("conflict, countries, their pair: Kazakhstan's ban told so",
     [R("Kazakhstan bans grain imports from Russia by road")],
     R("Запрет Казахстана на ввоз зерна из России"), True),
    ("conflict, sites: a capital where it happens (a visit to Astana, one to Bishkek)",
     [R("EU sanctions envoy O'Sullivan arrives in Astana for talks on re-exports")],
     R("Спецпосланник ЕС по санкциям О'Салливан обсудил в Бишкеке реэкспорт в Россию"),
     False),
    ("conflict, sites, their pair: Astana in Kazakh (Астанада), the EU as Еуроодақ",
     [R("EU sanctions envoy O'Sullivan arrives in Astana for talks on re-exports")],
     R("Еуроодақтың санкциялар жөніндегі арнайы өкілі О'Салливан Астанада реэкспорт "
       "туралы келіссөз жүргізді"), True),
    ("conflict, sites, their pair: a capital that acts is no site (Brussels is concerned)",
     [R("EU sanctions envoy O'Sullivan in Astana for talks on re-exports of dual-use goods")],
     R("Брюссель обеспокоен реэкспортом товаров двойного назначения через Казахстан",
       "Спецпосланник ЕС О'Салливан провёл в Астане переговоры о реэкспорте."), True),
    ("conflict, countries: a country before whom a passive measure falls is not who acts",
     [R("US sanctions Kyrgyzstan's Keremet Bank over Russia payments")],
     R("Kyrgyz bank sanctioned for helping Russia's parallel imports",
       "Keremet Bank is the first Kyrgyz lender blacklisted by Washington."), True),
    ("conflict, countries, their pair: the country's bank acting",
     [R("US sanctions Kyrgyzstan's Keremet Bank over Russia payments")],
     R("Kyrgyz bank sanctions Russian importers over payments",
       "Keremet Bank stopped payments for Russian importers."), False),
    ("conflict, countries: a reaction has its own subject (Kazakhstan comments the ruling)",
     [R("Russian court orders CPC to halt operations for 30 days")],
     R("В Минэнерго Казахстана прокомментировали решение суда по КТК",
       "Казахстанская сторона ведёт переговоры с акционерами консорциума после решения суда "
       "о приостановке работы КТК на 30 дней."), True),
    ("conflict, countries, their pair: Kazakhstan's own ruling (no reaction)",
     [R("Russian court orders CPC to halt operations for 30 days")],
     R("Суд Казахстана приостановил работу КТК на 30 дней",
       "Суд приостановил работу консорциума на 30 дней."), False),
    ("conflict, countries: a Kazakh country noun before the goods acts (Қырғызстан бидай...)",
     [R("Kazakhstan extends ban on wheat exports for six months")],
     R("Қырғызстан бидай экспортына тыйымды алты айға ұзартты"), False),
    ("conflict, countries, their pair: Қазақстан бидай...",
     [R("Kazakhstan extends ban on wheat exports for six months")],
     R("Қазақстан бидай экспортына тыйымды алты айға ұзартты"), True),
    ("conflict, countries, their pair: a Kazakh possessive says whose (Ресей бидайын)",
     [R("Kazakhstan bans Russian wheat imports by road")],
     R("Ресей бидайын автокөлікпен әкелуге тыйым салынды"), True),
    ("conflict, countries: a country before its goods is not who acts",
     [R("Russian court orders CPC to halt operations for 30 days")],
     R("Kazakh oil exports face halt as Russian court orders CPC to stop for 30 days"), True),
    ("conflict, domains: the Communist Party's CPC is not the pipeline",
     [R("Tokayev orders study of oil routes bypassing CPC",
        "Kazakhstan's president said oil exports must not depend on the CPC pipeline.")],
     R("Tokayev congratulates Xi on re-election as CPC general secretary",
       "Kazakhstan's president praised the congress of the Communist Party of China "
       "(CPC)."), False),
    ("sure: the same link, whatever the words",
     [R("Headline one way", link="https://same.example/a")],
     R("Entirely other words", link="https://same.example/a"), True),
    ("sure: the same text from another feed",
     [R("CPC halts loadings", "Loadings stopped on Tuesday.")],
     R("CPC halts loadings", "Loadings stopped on Tuesday."), True),
    ("sure: same_story's title test (an outlet suffix)",
     [R("Drone strike halts loadings at CPC terminal near Novorossiysk")],
     R("Drone strike halts loadings at CPC terminal near Novorossiysk - Reuters"), True),
    ("a route's end after a dash is no outlet's name (Ceyhan is BTC)",
     [R("Kazakhstan to pump oil via Baku – Ceyhan")],
     R("Казахстан начнёт прокачку нефти по БТД"), True),
    ("conflict, causes: upkeep (maintenance) is a cause of its own, not the storm's damage",
     [R("Storm damages CPC mooring SPM-3, loadings halted")],
     R("CPC takes SPM-3 offline for maintenance, loadings halted"), False),
    ("conflict, causes, their pair: repairs mend the storm's damage",
     [R("Storm damages CPC mooring SPM-3, loadings halted")],
     R("CPC takes SPM-3 offline for repairs, loadings halted"), True),
    ("conflict, causes, their pair: maintenance is обслуживание",
     [R("CPC takes SPM-2 offline for maintenance")],
     R("КТК вывел ВПУ-2 на плановое обслуживание"), True),
    ("conflict, causes: beside damage, a summary's maintenance is what else is down",
     [R("CPC takes SPM-3 offline for maintenance", "Loadings continue through SPM-1 and "
        "SPM-2.")],
     R("Tengiz partners face export halt after CPC buoy destroyed",
       "Producers may cut output after sea drones wrecked the CPC's SPM-2, with SPM-3 down "
       "for maintenance."), False),
    ("conflict, causes: a part replaced is a repair, not the inspection",
     [R("КТК возобновил работу двух причалов после проверки")],
     R("CPC brings SPM-2 back after hose replacement"), False),
    ("conflict, causes, their pair: replacement is замена",
     [R("CPC brings SPM-2 back after hose replacement")],
     R("КТК вернул в работу ВПУ-2 после замены шлангов"), True),
    ("conflict, causes: repairs follow the damage they mend (one event told twice)",
     [R("КТК завершил восстановление насосной станции после атаки дронов")],
     R("CPC pumping station back at full capacity after repairs"), True),
    ("conflict, causes, their pair: planned repairs are a cause of their own",
     [R("КТК завершил восстановление насосной станции после атаки дронов")],
     R("CPC pumping station back at full capacity after planned repairs"), False),
    ("vocabulary: supplies are exports, and Germany is Германия",
     [R("Kazakhstan supplies oil to Germany via Druzhba")],
     R("Казахстан экспортирует нефть в Германию по Дружбе"), True),
    ("vocabulary, its pair: another country receiving it",
     [R("Kazakhstan supplies oil to Germany via Druzhba")],
     R("Казахстан экспортирует нефть в Польшу по Дружбе"), False),
    ("vocabulary: pauses is остановил (three keys shared, not two)",
     [R("КТК остановил отгрузку")], R("CPC pauses loadings"), True),
    ("vocabulary: destroyed is damage (повреждён)",
     [R("Причал КТК повреждён")], R("CPC buoy destroyed"), True),
    ("vocabulary: an appeal is the court's (обжалует решение суда)",
     [R("КТК обжалует решение суда")], R("CPC to appeal ruling"), True),
    ("vocabulary, its pair: an appeal is a court cause, not the storm's",
     [R("Storm halts CPC loadings at Novorossiysk")],
     R("CPC to appeal ruling halting loadings at Novorossiysk"), False),
    ("vocabulary: a Kazakh stem's mutated consonant (айлақ, айлағы)",
     [R("CPC mooring halted")], R("КҚК айлағы тоқтатылды"), True),
    ("vocabulary: seized is задержан",
     [R("Tanker seized near Novorossiysk")],
     R("У Новороссийска задержан танкер"), True),
    ("vocabulary, its pair: a seizure elsewhere shares too little",
     [R("Tanker seized near Novorossiysk")],
     R("Танкер задержан у Актау"), False),
    ("countries: Japan is Япония (no shared letters to go by)",
     [R("Japan to buy Kazakh oil cargo")],
     R("Япония купит партию казахстанской нефти"), True),
    ("countries, their pair: India is another buyer",
     [R("Japan to buy Kazakh oil cargo")],
     R("Индия купит партию казахстанской нефти"), False),
    ("names: a Kazakh case ending is not part of the name (Новакпен is Novak)",
     [R("Smailov meets Novak on oil exports")],
     R("Смайылов Новакпен мұнай транзитін талқылады"), True),
    ("names, their pair: another minister met",
     [R("Smailov meets Novak on oil exports")],
     R("Смайылов Мантуровпен мұнай транзитін талқылады"), False),
    ("acronyms: the Kazakh КҚК is the CPC (its folded letters are only two)",
     [R("CPC halts loadings")],
     R("КҚК тиеуді тоқтатты"), True),
    ("acronyms, their pair: loadings halted, no one named",
     [R("CPC halts loadings")],
     R("Тиеу тоқтатылды"), False),
    ("two words naming the CPC: the Caspian pipeline, Каспийская труба",
     [R("CPC halts loadings")],
     R("Caspian Pipeline halts loadings"), True),
    ("two words, their pair: the Caspian's ports are not the CPC",
     [R("CPC halts loadings")],
     R("Caspian Sea ports halt loadings"), False),
    ("numbers: which mooring (SPM-2 is ВПУ-2)",
     [R("CPC takes SPM-2 offline")],
     R("КТК вывел ВПУ-2 из работы"), True),
    ("numbers, their pair: ВПУ-3 is another mooring",
     [R("CPC takes SPM-2 offline")],
     R("КТК вывел ВПУ-3 из работы"), False),
    ("numbers: an ordinal names the mooring (второй причал is SPM-2, not SPM-1)",
     [R("CPC resumes loadings at SPM-1 after repairs")],
     R("КТК возобновил отгрузку нефти через второй причал после ремонта"), False),
    ("numbers, their pair: второй причал is SPM-2",
     [R("CPC resumes loadings at SPM-2 after repairs")],
     R("КТК возобновил отгрузку нефти через второй причал после ремонта"), True),
    ("numbers: 1.5 mt is 1,5 млн тонн",
     [R("Kazakhstan to ship 1.5 mt of oil via BTC")],
     R("Казахстан отправит по БТД 1,5 млн тонн нефти"), True),
    ("numbers, their pair: 2,5 млн тонн is another volume",
     [R("Kazakhstan to ship 1.5 mt of oil via BTC")],
     R("Казахстан отправит по БТД 2,5 млн тонн нефти"), False),
    ("numbers: $73k is $73 тыс.",
     [R("Bitcoin tops $73k for the first time")],
     R("Биткоин впервые превысил $73 тыс."), True),
    ("numbers, their pair: $71 тыс. is another price",
     [R("Bitcoin tops $73k for the first time")],
     R("Биткоин впервые превысил $71 тыс."), False),
    ("names: a Cyrillic name's opening Е is a Latin Ye (Есимов is Yesimov)",
     [R("Yesimov visits Aktau port")],
     R("Есимов посетил порт Актау"), True),
    ("names, their pair: another visitor",
     [R("Yesimov visits Aktau port")],
     R("Мамин посетил порт Актау"), False),
    ("rules: reports of two topics (sanctions, a CPC outage) that hit no rule in common",
     [hitting(R("Kazakhstan oil exports hit by Russian sanctions"), "sanctioned-transit")],
     hitting(R("Kazakhstan oil exports hit by CPC outage"), "cpc-disruption"), False),
    ("rules, their pair: a rule in common (a report may hit two: a story spans them)",
     [hitting(R("Kazakhstan oil exports hit by Russian sanctions"), "sanctioned-transit",
          "cpc-disruption")],
     hitting(R("Kazakhstan oil exports hit by CPC outage"), "cpc-disruption"), True),
    ("rules, their pair: a report that hit no rule is of any topic",
     [hitting(R("Kazakhstan oil exports hit by Russian sanctions"), "sanctioned-transit")],
     R("Kazakhstan oil exports hit by CPC outage"), True),
]


@pytest.mark.parametrize(("why", "story", "new", "joined"), PLACE_CASES,
                         ids=[c[0] for c in PLACE_CASES])
def test_place_pairs(why: str, story: list[Report], new: Report, joined: bool) -> None:
    assert joins(story, new) is joined
    if len(story) == 1:  # and the other way round
        assert joins([new], story[0]) is joined


_EARLIER = ["Kazakhstan wheat harvest forecast raised", "EU adopts new Russia sanctions package",
            "Tengiz output rises in November", "Uzbekistan bans cotton exports",
            "Bitcoin falls below $60,000", "Kyrgyzstan raises fuel prices",
            "BTC pipeline volumes steady", "Kazakh rail freight grows"]


def test_near_join_a_vague_report_hours_after_the_one_story_of_its_topic() -> None:
    """near_join: outlets report an event within hours, some only vaguely. A vague
    report joins the story of its topic of the last hours, not one 30 hours back,
    and not when the window's reports were all published at one moment (time then
    tells nothing: join)."""
    story = R("Storm damages CPC moorings, halting tanker loadings at Novorossiysk",
              "The Caspian Pipeline Consortium said a storm damaged two of its three single "
              "point moorings near Novorossiysk.")
    vague = R("Экспорт нефти через КТК снова под угрозой",
              "Шторм в Новороссийске ударил по отгрузкам.", hours=5)
    earlier = [R(t, hours=-60 - i) for i, t in enumerate(_EARLIER)]

    def joined(new: Report, window: list[Report]) -> bool:
        placed = [replace(r, story=r.item_id) for r in (story, *window)]
        return stories.place([new], placed) == [story.item_id]

    assert joined(vague, earlier)
    assert joined(vague, [])  # a window of one report says little of the pace
    assert not joined(replace(vague, published=T + timedelta(hours=30)), earlier)
    assert not joined(replace(vague, published=T),
                      [replace(r, published=T) for r in earlier])


def test_near_join_counts_only_the_stories_of_the_reports_topic() -> None:
    """near_join, by topic: a story of another topic told in the same hours (a grain
    ban) does not raise what a vague report needs to join the one CPC story of those
    hours; another CPC story as near does, and so does any story where the reports
    carry no rules."""
    story = hitting(R("Storm damages CPC moorings, halting tanker loadings at Novorossiysk",
                  "The Caspian Pipeline Consortium said a storm damaged two of its three "
                  "single point moorings near Novorossiysk."), "cpc-disruption")
    vague = hitting(R("Экспорт нефти снова под угрозой",
                  "Шторм в Новороссийске ударил по отгрузкам.", hours=5), "cpc-disruption")
    other = R("Kazakhstan extends ban on wheat exports", hours=4)
    earlier = [R(t, hours=-60 - i) for i, t in enumerate(_EARLIER)]

    def joined(new: Report, window: list[Report]) -> bool:
        placed = [replace(r, story=r.item_id) for r in (story, *window, *earlier)]
        return stories.place([new], placed) == [story.item_id]

    assert joined(vague, [])  # the one story of the last hours
    assert joined(vague, [hitting(other, "eaeu-grain-ban")])
    assert not joined(vague, [hitting(other, "cpc-disruption")])
    assert not joined(replace(vague, rules=()), [hitting(other, "eaeu-grain-ban")])


def test_copies_of_one_text_count_once_in_a_story() -> None:
    """A wire report carried by three feeds weighs in a story as one report would:
    whatever the new report, the story answers as with one copy."""
    wire = ("Суд приостановил деятельность КТК на 30 суток",
            "Краевой суд приостановил работу Каспийского трубопроводного консорциума.")
    other = R("Russian court orders CPC to halt operations for 30 days")
    copies = [R(*wire), R(*wire), R(*wire), other]
    for title in ("Kazakhstan's oil export route shut by Russian court",
                  "Russian court ruling threatens Kazakh oil exports",
                  "Russia Halts Kazakh Oil Export Link for a Month in Court Ruling"):
        new = R(title)
        assert joins(copies, new) is joins([copies[0], other], new), title


def test_a_vague_report_does_not_chain_two_developments() -> None:
    """A story's reports all count: a report contradicting one of them starts another
    story, however alike the vague one that joined in between."""
    a = R("Russia sets grain export quota at 24 mln t, keeps wheat ban")
    vague = R("Russia sets grain export quota, keeps wheat ban", hours=1)
    c = R("Russia sets grain export quota at 25.5 mln t, keeps wheat ban", hours=2)
    assert joins([a], vague)
    assert not joins([a, vague], c)


def test_new_reports_join_the_stories_earlier_ones_start() -> None:
    en = R("Storm damages CPC moorings, halting tanker loadings at Novorossiysk", _STORM_EN)
    ru = R("Шторм повредил причалы КТК, отгрузка танкеров в Новороссийске остановлена",
           _STORM_RU, hours=1)
    other = R("Kazakhstan bans wheat imports by road for six months", hours=2)
    assert stories.place([en, ru, other], []) == [en.item_id, en.item_id, other.item_id]


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_placement_does_not_depend_on_what_earlier_calls_were_handed(seed: int) -> None:
    """The index kept between calls is a cache: whatever ``placed`` was before (other
    reports, the same ids with other texts or stories, the same list grown), a call
    answers as a fresh index would."""
    rng = random.Random(seed)
    titles = [c[1][0].title for c in PLACE_CASES] + [c[2].title for c in PLACE_CASES]
    pool = [Report(item_id=i, title=rng.choice(titles), summary="", link=None,
                   published=T, story=rng.randrange(1, 30)) for i in range(1, 60)]
    grown: list[Report] = []
    for _ in range(40):
        step = rng.randrange(4)
        if step == 0:
            placed: list[Report] = rng.sample(pool, rng.randrange(len(pool)))
        elif step == 1:  # the same ids, other stories or texts
            placed = [replace(r, story=rng.randrange(1, 30)) if rng.random() < 0.3 else
                      replace(r, title=rng.choice(titles)) for r in rng.sample(pool, 30)]
        else:  # one list grown in place, as a caller appending what it stored
            grown.append(rng.choice(pool))
            placed = grown
        new = [R(rng.choice(titles)) for _ in range(rng.randrange(1, 4))]
        got = stories.place(new, placed)
        kept = stories._INDEX
        stories._INDEX = stories._Index()
        try:
            assert got == stories.place(new, placed)
        finally:
            stories._INDEX = kept


@pytest.mark.slow
def test_the_bench_runs_small() -> None:
    bench = Path(__file__).resolve().parents[1] / "bench"
    result = subprocess.run([sys.executable, str(bench / "bench_stories.py"), "--smoke"],
                            cwd=bench.parent, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "content_alone" in result.stdout and "with_dates" in result.stdout


def _placed_one_by_one(rows: list[dict], *, dated: bool) -> list[int]:
    placed: list[Report] = []
    out = []
    for n, r in enumerate(rows, 1):
        at = datetime.fromisoformat(r["published"].replace("Z", "+00:00")) if dated else T
        report = Report(item_id=n, title=r["title"], summary=r.get("summary") or "",
                        link=r.get("link"), published=at, lang=r.get("lang"))
        [story] = stories.place([report], placed)
        placed.append(replace(report, story=story))
        out.append(story)
    return out


@pytest.mark.parametrize("dated", [False, True])
def test_the_bound_that_skips_a_story_changes_no_placement(
        dated: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``_below`` skips the vectors of a story whose shared keys cannot reach the lowest
    join: on a labelled set, every placement is what working the vectors out gives."""
    path = Path(__file__).resolve().parents[1] / "bench" / "data" / "stories-a.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    rows.sort(key=lambda r: r["published"])
    skipped: list[bool] = []
    below = stories._below

    def counted(*args: object) -> bool:
        skipped.append(below(*args))  # type: ignore[arg-type]
        return skipped[-1]

    stories._INDEX = stories._Index()
    monkeypatch.setattr(stories, "_below", counted)
    with_bound = _placed_one_by_one(rows, dated=dated)
    monkeypatch.setattr(stories, "_below", lambda *args: False)
    stories._INDEX = stories._Index()
    without = _placed_one_by_one(rows, dated=dated)
    stories._INDEX = stories._Index()
    assert with_bound == without
    assert any(skipped)  # the bound did skip stories


def test_a_story_of_many_reports_is_still_joined_through_its_newest() -> None:
    """A story larger than _COMPARED is compared through its first report, the
    candidates and its newest: one event carried by 40 feeds takes a 41st report."""
    story = [R("Storm damages CPC moorings, halting tanker loadings at Novorossiysk",
               _STORM_EN, hours=k / 10) for k in range(40)]
    story = [replace(r, summary=f"{r.summary} ({k})") for k, r in enumerate(story)]
    first = story[0].item_id
    placed = [replace(r, story=first) for r in story]
    ru = R("Шторм повредил причалы КТК, отгрузка танкеров в Новороссийске остановлена",
           _STORM_RU, hours=5)
    assert stories.place([ru], placed) == [first]
