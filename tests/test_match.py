"""The matching engine: real rule files on disk, compiled once, matched against text."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.match import Matcher
from monitor.models import Evidence, Match
from monitor.rules import RuleSet, load_rules


def _matcher(tmp_path: Path, *bodies: str) -> Matcher:
    """A Matcher over rule files written from YAML bodies (id r0, r1, ... unless given)."""
    for i, body in enumerate(bodies):
        body = textwrap.dedent(body)
        head = "" if body.startswith("id:") else f"id: r{i}\n"
        head += "title: T\ndescription: D\nseverity: medium\n"
        (tmp_path / f"r{i}.yaml").write_text(head + body, encoding="utf-8")
    return Matcher(load_rules(tmp_path))


def _ids(matcher: Matcher, title: str, summary: str = "") -> list[str]:
    return [m.rule_id for m in matcher.match(title, summary)]


def test_a_hit_carries_rule_score_and_evidence(tmp_path: Path) -> None:
    m = _matcher(tmp_path, """
        terms: [Caspian Pipeline Consortium]
    """)
    # The score grades the evidence (score.WEIGHTS): the topic, exact, in the title.
    assert m.match("Storm hits the Caspian Pipeline Consortium", "") == [
        Match("r0", 63.0, (Evidence("title", "Caspian Pipeline Consortium",
                                     "Caspian Pipeline Consortium", 15, 42, 100.0),))]
    assert m.match("Nothing to see", "here") == []


def test_evidence_offsets_point_into_the_original_text(tmp_path: Path) -> None:
    m = _matcher(tmp_path, "terms: [КТК, Tengiz]\n")
    title = "Straße ﬁnal: ＫＴＫ and doku\u0301ment"
    summary = "Soft\u00adhyphen… then Tengiz."
    (hit,) = m.match(title, summary)
    for e in hit.evidence:
        field = title if e.field == "title" else summary
        assert field[e.start:e.end] == e.text
    assert [e.text for e in hit.evidence] == ["ＫＴＫ", "Tengiz"]


def test_typos_in_long_words_match_with_a_lower_score(tmp_path: Path) -> None:
    m = _matcher(tmp_path, "terms: [Caspian Pipeline Consortium, Novorossiysk]\n")
    (hit,) = m.match("Caspian Pipline Consortium", "")
    (exact,) = m.match("Caspian Pipeline Consortium", "")
    assert 90 < hit.evidence[0].score < 100
    assert hit.score < exact.score
    assert hit.evidence[0].text == "Caspian Pipline Consortium"
    assert _ids(m, "Loadings resume at Novorosiysk") == ["r0"]
    # A typo among the first letters too (the word is found by its stem's ending).
    assert _ids(m, "Caspain Pipeline Consortium") == ["r0"]
    assert _ids(m, "Nvorossiysk loadings") == ["r0"]
    # Two letters off is another word; so is a word cut short.
    assert _ids(m, "Caspian Pipeline Consortia") == []
    assert _ids(m, "Casp Pipeline Consortium") == []


def test_short_words_and_acronyms_need_exact_spelling(tmp_path: Path) -> None:
    m = _matcher(tmp_path, "terms: [CPC, quota]\n")
    assert _ids(m, "CPC halts loadings") == ["r0"]
    assert _ids(m, "CPT halts loadings") == []
    assert _ids(m, "A new qouta") == []


def test_fuzzy_100_turns_typo_tolerance_off(tmp_path: Path) -> None:
    m = _matcher(tmp_path, """
        terms:
          - term: Novorossiysk
            fuzzy: 100
    """, "fuzzy: 90\nterms: [Tengizchevroil]\n")
    assert _ids(m, "Novorossiysk") == ["r0"]
    assert _ids(m, "Novorosiysk") == []
    assert _ids(m, "Tengizchevroyl") == ["r1"]
    assert _ids(m, "Tengizshevroyl") == []  # two letters off: below 90


def test_stems_match_inflections_but_not_other_words(tmp_path: Path) -> None:
    m = _matcher(tmp_path, "terms: [ban, export pipeline]\n")
    assert _ids(m, "Kazakhstan bans wheat") == ["r0"]
    assert _ids(m, "Wheat banned") == ["r0"]
    assert _ids(m, "Central bank raises rates") == []
    assert _ids(m, "two export pipelines") == ["r0"]


def test_russian_inflection(tmp_path: Path) -> None:
    m = _matcher(tmp_path, "terms: [Каспийский трубопроводный консорциум, пшеница]\n")
    assert _ids(m, "Суд приостановил работу Каспийского трубопроводного консорциума") == ["r0"]
    (hit,) = m.match("Квоты на вывоз пшеницы", "")
    assert hit.evidence[0].text == "пшеницы"


def test_kazakh_suffixes_by_stem_prefix_and_star(tmp_path: Path) -> None:
    m = _matcher(tmp_path, "terms: [экспорт, бидай*]\n")
    assert _ids(m, "Ұн экспортқа шығарылды") == ["r0"]
    (hit,) = m.match("Қазақстан бидайды әкелуге тыйым салды", "")
    assert hit.evidence[0].text == "бидайды"


def test_short_names_take_kazakh_case_endings(tmp_path: Path) -> None:
    # Russian stems of "Актау" and "Баку" are too short for the stem rule; the
    # whole name followed by a Kazakh ending still matches, other words do not.
    m = _matcher(tmp_path, "terms: [Актау]\n", "terms: [Баку]\n", "terms: [рис]\n")
    assert _ids(m, "Ақтаудан мұнай жөнелтілді") == ["r0"]
    assert _ids(m, "Бакуге дейін танкерлер") == ["r1"]
    assert _ids(m, "Актауский порт") == []  # a Russian ending is not a Kazakh one
    assert _ids(m, "риск вырос") == []  # three letters are too short to take endings
    # Only in Kazakh text (it shows in its letters): in Russian "Бакунин" is a name.
    # Both orders, as a word's verdict is remembered between items.
    assert _ids(m, "Бакунің мұнай терминалы") == ["r1"]
    assert _ids(m, "Михаил Бакунин и анархизм") == []
    assert _ids(m, "Собрание сочинений", "Бакунин, том 3") == []
    assert _ids(m, "Нефть Бакунин", "Бакунің терминалы (Kazakh in the summary)") == ["r1"]


def test_kazakh_and_russian_spellings_meet(tmp_path: Path) -> None:
    m = _matcher(tmp_path, "terms: [КазМунайГаз]\n")
    assert _ids(m, "ҚазМұнайГаз ұсынысы") == ["r0"]


def test_cyrillic_names_match_their_transliteration(tmp_path: Path) -> None:
    m = _matcher(tmp_path, "terms: [Каспийский трубопроводный консорциум, КТК, диверсия]\n")
    assert _ids(m, "Kaspiyskiy truboprovodnyy konsortsium") == ["r0"]
    (hit,) = m.match("KTK terminal", "")
    assert (hit.evidence[0].term, hit.evidence[0].text) == ("КТК", "KTK")
    # Common words are not transliterated: "diversiya" is no English word to meet.
    assert _ids(m, "diversiya") == []


def test_near_counts_a_term_only_in_context(tmp_path: Path) -> None:
    m = _matcher(tmp_path, """
        terms:
          - term: CPC
            near: [oil, pipeline*]
            within: 3
    """)
    assert _ids(m, "CPC oil loadings halted") == ["r0"]
    assert _ids(m, "Pipelines: CPC halts loadings") == ["r0"]
    assert _ids(m, "CPC plenum opens in Beijing") == []
    assert _ids(m, "CPC one two three four oil") == []  # four words between
    assert _ids(m, "CPC halts loadings", "Oil prices rise") == []  # another field
    (hit,) = m.match("CPC oil", "")
    assert [e.text for e in hit.evidence] == ["CPC", "oil"]


def test_near_without_within_looks_at_the_whole_item(tmp_path: Path) -> None:
    m = _matcher(tmp_path, """
        terms:
          - term: BTC
            near: [pipeline]
    """)
    assert _ids(m, "BTC flows rise", "The pipeline carried more oil") == ["r0"]
    assert _ids(m, "BTC price rises", "Crypto traders cheer") == []


def test_require_groups_and_proximity(tmp_path: Path) -> None:
    m = _matcher(tmp_path, """
        terms: [wheat]
        require:
          - name: restriction
            within: 4
            terms: [ban, quota*]
          - name: actor
            terms: [Kazakh*]
    """)
    assert _ids(m, "Wheat export ban", "Kazakhstan decided it.") == ["r0"]
    assert _ids(m, "Wheat export ban") == []                      # no actor
    assert _ids(m, "Kazakh wheat harvest, and one two three four ban") == []  # too far
    (hit,) = m.match("Kazakhstan sets wheat quotas", "")
    assert {e.text for e in hit.evidence} == {"Kazakhstan", "wheat", "quotas"}


def test_exclusions_item_wide_and_scoped(tmp_path: Path) -> None:
    m = _matcher(tmp_path, """
        terms:
          - BTC
          - grain
        exclude:
          - Bitcoin
          - term: grain deal
            within: 1
    """)
    assert _ids(m, "BTC pipeline carries Kazakh crude") == ["r0"]
    assert _ids(m, "BTC rallies", "Bitcoin traders rejoice") == []
    assert _ids(m, "Black Sea grain deal extended") == []
    assert _ids(m, "Grain ban replaces the grain deal") == ["r0"]  # the first grain is far


def test_fields(tmp_path: Path) -> None:
    m = _matcher(tmp_path, "fields: [title]\nterms: [Tengiz]\n",
                 "terms:\n  - term: Kashagan\n    fields: [summary]\n",
                 "fields: [title]\nterms: [Aktau]\nrequire:\n"
                 "  - terms:\n      - term: tanker\n        fields: [summary]\n")
    assert _ids(m, "Tengiz output", "") == ["r0"]
    assert _ids(m, "Output", "Tengiz output") == []
    assert _ids(m, "Kashagan output", "") == []
    assert _ids(m, "Output", "Kashagan output") == ["r1"]
    # A term's own fields replace the rule's.
    assert _ids(m, "Aktau port", "A tanker left") == ["r2"]
    assert _ids(m, "Aktau tanker", "") == []


def test_multi_word_terms_need_their_words_in_order(tmp_path: Path) -> None:
    m = _matcher(tmp_path, "terms: [Baku-Tbilisi-Ceyhan]\n")
    assert _ids(m, "via the Baku – Tbilisi – Ceyhan pipeline") == ["r0"]
    assert _ids(m, "Baku Tbilisi-Ceyhan link") == ["r0"]
    assert _ids(m, "Ceyhan, Tbilisi and Baku") == []


def test_possessives_do_not_split_terms(tmp_path: Path) -> None:
    m = _matcher(tmp_path, "terms: [Kazakhstan oil]\n")
    assert _ids(m, "Kazakhstan's oil exports") == ["r0"]


def test_several_rules_in_rule_set_order(tmp_path: Path) -> None:
    # Files r0.yaml, r1.yaml: the rule set keeps the files' order, not the ids'.
    m = _matcher(tmp_path, "id: zeta\nterms: [wheat]\n", "id: alpha\nterms: [wheat flour]\n")
    assert isinstance(m.rules, RuleSet) and m.rules.ids == ("zeta", "alpha")
    assert _ids(m, "wheat flour quotas") == ["zeta", "alpha"]
    assert Matcher.compile(m.rules).rules is m.rules


def test_evidence_lists_one_entry_per_span(tmp_path: Path) -> None:
    m = _matcher(tmp_path, "terms: [Kazakh*, Kazakhstan]\n")
    (hit,) = m.match("Kazakhstan, Kazakhstan", "")
    assert [(e.start, e.end) for e in hit.evidence] == [(0, 10), (12, 22)]


@pytest.mark.slow
def test_importing_the_matcher_loads_no_io_library() -> None:
    code = ("import sys, monitor.match; "
            "print(sorted(m for m in ('yaml', 'sqlalchemy', 'aiohttp', 'feedparser', 'httpx') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


# -- properties -----------------------------------------------------------------

_PROPERTY_RULES = """
terms:
  - Caspian Pipeline Consortium
  - КТК
  - бидай*
  - term: CPC
    near: [oil]
require:
  - terms: [halt*, ban, тыйым]
"""

_pieces = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["Caspian Pipline Consortium", "КТК", "ҚҚК", "бидайды", "CPC", "oil",
                     "halts", "ban", "тыйым", "ﬁ", "ß", "\u00ad", "\u0301", "İ", "…", " ", "-",
                     "'s", "😀"]),
)


@settings(max_examples=200, deadline=None)
@given(title=st.lists(_pieces, max_size=8).map("".join),
       summary=st.lists(_pieces, max_size=12).map("".join))
def test_any_text_matches_without_error_and_offsets_stay_inside(
        tmp_path_factory: pytest.TempPathFactory, title: str, summary: str) -> None:
    m = _property_matcher(tmp_path_factory)
    for hit in m.match(title, summary):
        assert 0 <= hit.score <= 100
        for e in hit.evidence:
            field = title if e.field == "title" else summary
            assert 0 <= e.start < e.end <= len(field)
            assert field[e.start:e.end] == e.text
            assert 0 < e.score <= 100


_cache: dict[str, Matcher] = {}


def _property_matcher(factory: pytest.TempPathFactory) -> Matcher:
    if "m" not in _cache:
        folder = factory.mktemp("property-rules")
        _cache["m"] = _matcher(folder, _PROPERTY_RULES)
    return _cache["m"]


@pytest.mark.parametrize("evidence", [
    Evidence("title", "КТК", "КТК", 0, 3, 100.0),
    Evidence("summary", 'the "Caspian" pipe\\line', 'Caspian\u2028"pipe"\tline', 12, 40,
             87.66666),
    Evidence("content", "halt*", "halted", 5, 11, 91.25, context="…CPC halted\nloadings…",
             context_start=2),
])
def test_evidence_json_is_what_json_dumps_writes(evidence: Evidence) -> None:
    """``match`` writes ``Evidence.to_json``: byte for byte the JSON of ``to_dict``."""
    assert evidence.to_json() == json.dumps(evidence.to_dict(), ensure_ascii=False)
