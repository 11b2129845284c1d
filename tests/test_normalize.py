"""Normalisation for matching: folding, and offsets that lead back to the original text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.normalize import WORD_RE, fold, normalize, stem, term_words, to_latin


def _back(original: str, normalised_word: str) -> str:
    """The original text of the first occurrence of a normalised word."""
    norm = normalize(original)
    start = norm.text.index(normalised_word)
    a, b = norm.span(start, start + len(normalised_word))
    return original[a:b]


@pytest.mark.parametrize(("text", "expected"), [
    ("Caspian PIPELINE", "caspian pipeline"),
    ("ＣＰＣ ｔｅｒｍｉｎａｌ", "cpc terminal"),                  # NFKC: full-width letters
    ("Straße", "strasse"),                                    # casefold expands
    ("Ёлка и ёж", "елка и еж"),                                # ё -> е
    ("ҚазМұнайГаз", "казмунайгаз"),                             # Kazakh letters
    ("әғқңөұүһі", "агкноуухи"),
    ("Baku–Tbilisi—Ceyhan", "baku-tbilisi-ceyhan"),            # dashes
    ("«КТК» “CPC” ‘x’", "\"ктк\" \"cpc\" 'x'"),              # quotes
    ("Türkiye Şahdəniz", "turkiye sahdeniz"),                 # Latin diacritics
    ("Ka\u00adzakh\u200b", "kazakh"),                          # soft hyphen, zero-width space
    ("доку\u0301мент", "документ"),                            # a stress accent
    ("и\u0306", "й"),                                          # decomposed й composes
    ("Kaзахстан", "казахстан"),                                # Latin K in a Cyrillic word
    ("KТK", "ktk"),                                            # Cyrillic Т in a Latin word
    ("Kazakhstan's oil", "kazakhstan   oil"),                  # possessive dropped
])
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


@pytest.mark.parametrize(("original", "word", "expected"), [
    ("Straße to Tengiz", "tengiz", "Tengiz"),
    ("ﬁnal ＣＰＣ halt", "cpc", "ＣＰＣ"),
    ("Ka\u00adzakh oil", "kazakh", "Ka\u00adzakh"),
    ("доку\u0301мент КТК", "ктк", "КТК"),
    ("доку\u0301мент", "документ", "доку\u0301мент"),
    ("…Tengiz", "tengiz", "Tengiz"),
])
def test_spans_map_back_to_the_original(original: str, word: str, expected: str) -> None:
    assert _back(original, word) == expected


def test_same_length_text_keeps_the_identity_map() -> None:
    norm = normalize("Каспийский трубопроводный консорциум — «КТК»")
    assert norm.starts is None and norm.span(3, 9) == (3, 9)


def test_words_split_on_punctuation_and_keep_digits() -> None:
    assert WORD_RE.findall(fold("SPM-3 at CPC's terminal; Tengiz_field")) == \
        ["spm", "3", "at", "cpc", "terminal", "tengiz", "field"]


def test_stem_follows_the_script() -> None:
    assert stem("pipelines") == stem("pipeline") == "pipelin"
    assert stem("пшеницы") == stem("пшеница") == "пшениц"
    assert stem("banned") == "ban" != stem("bank")


def test_to_latin() -> None:
    assert to_latin(fold("Каспийский")) == "kaspiyskiy"
    assert to_latin(fold("Щучинск Жезказган")) == "shchuchinsk zhezkazgan"


def test_term_words() -> None:
    assert term_words("Baku–Tbilisi–Ceyhan") == (("baku", False), ("tbilisi", False),
                                                 ("ceyhan", False))
    assert term_words("выносн* причальн* устройство") == (
        ("выносн", True), ("причальн", True), ("устройство", False))


@pytest.mark.parametrize(("term", "message"), [
    ("pipe*line", "'*' may only end a word"),
    ("*oil", "'*' must directly follow a word"),
    ("oil **", "'*' must directly follow a word"),
    ("ab*", "the prefix 'ab*' is too short (at least 3 letters before '*')"),
    ("CPC|KTK", "'|' is not allowed in a term (write one term per entry; '*' at the end of "
                "a word is the only wildcard)"),
    (" -- ", "a term needs at least one letter or digit"),
])
def test_invalid_terms(term: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        term_words(term)
    assert str(info.value) == message


@given(st.text())
def test_any_text_normalises_with_offsets_inside_it(text: str) -> None:
    norm = normalize(text)
    if norm.starts is None:
        assert len(norm.text) == len(text)
        return
    assert norm.ends is not None
    assert len(norm.starts) == len(norm.ends) == len(norm.text)
    assert all(0 <= a < b <= len(text) for a, b in zip(norm.starts, norm.ends, strict=True))
    assert list(norm.starts) == sorted(norm.starts)
    for m in WORD_RE.finditer(norm.text):
        a, b = norm.span(*m.span())
        assert 0 <= a < b <= len(text)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_normalising_twice_changes_nothing_more(text: str) -> None:
    once = fold(text)
    # The words are stable; blanks from dropped possessives may differ in count.
    assert WORD_RE.findall(fold(once)) == WORD_RE.findall(once)
