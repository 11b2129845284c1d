"""Text normalisation for matching: one canonical form for rule terms and item text.

This module owns how text is folded before matching and how matched spans map
back to the text the caller gave. :func:`normalize` applies, in order:

* Unicode NFKC (full-width letters, ligatures, compatibility digits);
* case folding;
* dropping invisible format characters (soft hyphen, zero-width space, BOM)
  and leftover combining marks (Russian stress accents, a stray diaeresis);
* one-to-one folds: Russian ``ё`` -> ``е``; the Kazakh letters
  ``ә ғ қ ң ө ұ ү һ і`` -> their Russian look-alikes (so ``ҚазМұнайГаз`` and
  ``КазМунайГаз`` meet); Latin letters with diacritics -> the bare letter;
  every dash -> ``-``; curly and angle quotes -> ``'`` and ``"``; exotic spaces -> `` ``;
* words mixing Latin and Cyrillic look-alike letters (``Kaзахстан`` typed with
  a Latin K) are written in their majority script;
* the English possessive ``'s`` becomes blank (``Kazakhstan's oil`` reads as
  the two words ``kazakhstan oil``).

The result keeps an offset map (:class:`Normalized`), so a span found in the
normalised copy names the same characters in the original text. Most text
needs no change in length, and then the map is the identity and costs nothing.

Words are runs of letters and digits (:data:`WORD_RE`): hyphens, apostrophes
and all punctuation separate words. :func:`stem` picks the Snowball stemmer by
script (Russian for Cyrillic, English otherwise); Kazakh has no Snowball
stemmer, so rules match its suffixed forms by word prefix (see ``match``).
:func:`to_latin` transliterates folded Cyrillic for matching Latin spellings
(``Kaspiyskiy`` / ``Каспийский``).

Pure functions, standard library and PyStemmer only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import Stemmer

__all__ = [
    "MIN_PREFIX",
    "WORD_RE",
    "Normalized",
    "fold",
    "is_cyrillic",
    "normalize",
    "stem",
    "term_words",
    "to_latin",
]

#: A word: a run of letters and digits (``_`` is no letter).
WORD_RE = re.compile(r"[^\W_]+")


def _build_fold() -> dict[str, str]:
    """The one-to-one character folds applied after case folding."""
    fold: dict[str, str] = {
        "ё": "е", "ә": "а", "ғ": "г", "қ": "к", "ң": "н", "ө": "о", "ұ": "у", "ү": "у",
        "һ": "х", "і": "и", "ї": "и", "є": "е", "ґ": "г", "ў": "у",
        # Letters used as apostrophes, which \w would otherwise glue into words.
        "ʼ": "'", "ʻ": "'", "ʹ": "'", "ˈ": "'",
    }
    for ch in "‐‑‒–—―−⁃﹘﹣":
        fold[ch] = "-"
    for ch in "‘’‚‛′`´":
        fold[ch] = "'"
    for ch in "“”„‟″«»‹›":
        fold[ch] = '"'
    for ch in "\u0085\u1680\u2028\u2029\u3000":
        fold[ch] = " "
    # Latin letters with diacritics -> the bare letter ("Türkiye", "Şahdəniz").
    # Lower case only: folding runs after casefold.
    for cp in range(0x00C0, 0x0250):
        ch = chr(cp)
        if ch != ch.casefold():
            continue
        base = unicodedata.normalize("NFD", ch)[0]
        if base != ch and base.isascii() and base.isalpha():
            fold[ch] = base
    fold.update({"ə": "e", "ı": "i", "ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ŧ": "t"})
    return fold


_FOLD: dict[str, str] = _build_fold()
_FOLD_RE = re.compile("[" + re.escape("".join(sorted(_FOLD))) + "]")


def _bmp_class(predicate: Callable[[str], bool]) -> str:
    """A regex character class of the BMP code points the predicate accepts (ranges merged)."""
    ranges: list[tuple[int, int]] = []
    for cp in range(0x80, 0x10000):
        if predicate(chr(cp)):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
                   for a, b in ranges)


def _is_dropped(ch: str) -> bool:
    # Combining marks and invisible format characters carry no letters for matching.
    return unicodedata.category(ch) in ("Mn", "Me", "Cf")


# Text holding any of these takes the slow path (characters vanish, so offsets move).
# Characters beyond the BMP (emoji, rare scripts) go there too: listing the
# few astral marks one by one would make this search 50 times slower.
_DROP_RE = re.compile("[" + _bmp_class(_is_dropped) + "\U00010000-\U0010FFFF]")

_LAT_TO_CYR = str.maketrans("abcehikmoptxy", "авсенікмортху")
_CYR_TO_LAT = str.maketrans("авсенікмортху", "abcehikmoptxy")
_POSSESSIVE_RE = re.compile(r"(?<=[a-z0-9])'s(?![^\W_])")
_MIXED_RE = re.compile(r"[a-z][а-я]|[а-я][a-z]")
_LATIN_RE = re.compile(r"[a-z]")
_CYRILLIC_RE = re.compile(r"[а-я]")


@dataclass(frozen=True, slots=True)
class Normalized:
    """Normalised text and the way back to the original.

    ``starts[i]`` and ``ends[i]`` are the span of original text that produced
    normalised character ``i``; both are None when the map is the identity.
    """

    text: str
    starts: tuple[int, ...] | None = None
    ends: tuple[int, ...] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a non-empty span of :attr:`text` to the original text's offsets."""
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


def normalize(text: str) -> Normalized:
    """Normalise ``text`` for matching, keeping the offset map (see module docstring)."""
    if text.isascii():
        # ASCII needs case folding only, which keeps every offset.
        return Normalized(_drop_possessive(text.lower()))
    if unicodedata.is_normalized("NFKC", text):
        folded = text.casefold()
        # casefold never shortens a character, so equal length means one to one.
        if len(folded) == len(text) and not _DROP_RE.search(folded):
            return Normalized(_drop_possessive(_fix_mixed(_fold_chars(folded))))
    return _normalize_slow(text)


def _drop_possessive(text: str) -> str:
    # "Kazakhstan's oil" must read as "kazakhstan oil" for the term "Kazakhstan oil";
    # two spaces keep every offset.
    if "'s" not in text:
        return text
    return _POSSESSIVE_RE.sub("  ", text)


def fold(text: str) -> str:
    """The normalised text alone, without the offset map."""
    return normalize(text).text


def _fold_chars(text: str) -> str:
    for ch in set(_FOLD_RE.findall(text)):
        text = text.replace(ch, _FOLD[ch])
    return text


def _normalize_slow(text: str) -> Normalized:
    """Character by character, for text whose length changes when normalised."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i, n = 0, len(text)
    while i < n:
        # A cluster is a character and the combining marks after it: NFKC
        # composes them (и + breve -> й), and they map back as one unit.
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        piece = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text[i:j]).casefold())
        for ch in piece:
            if _is_dropped(ch):
                continue
            out.append(_FOLD.get(ch, ch))
            starts.append(i)
            ends.append(j)
        i = j
    return Normalized(_drop_possessive(_fix_mixed("".join(out))), tuple(starts), tuple(ends))


def _fix_mixed(text: str) -> str:
    """Write words that mix Latin and Cyrillic look-alikes in their majority script."""
    if not _MIXED_RE.search(text):
        return text
    return WORD_RE.sub(_fix_word, text)


def _fix_word(m: re.Match[str]) -> str:
    word = m.group()
    latin = len(_LATIN_RE.findall(word))
    cyrillic = len(_CYRILLIC_RE.findall(word))
    if not latin or not cyrillic:
        return word
    # Ties go to Cyrillic: a short mixed word is likelier a Russian one mistyped.
    fixed = word.translate(_LAT_TO_CYR) if cyrillic >= latin else word.translate(_CYR_TO_LAT)
    # Folding again turns the Kazakh і that a Latin i became into и.
    return _fold_chars(fixed)


def is_cyrillic(word: str) -> bool:
    """True when the (normalised) word holds a Cyrillic letter."""
    return _CYRILLIC_RE.search(word) is not None


# PyStemmer ships no type hints: its one method used here is typed where it enters.
_RUSSIAN: Callable[[str], str] = Stemmer.Stemmer("russian").stemWord
_ENGLISH: Callable[[str], str] = Stemmer.Stemmer("english").stemWord


def stem(word: str) -> str:
    """The Snowball stem of one normalised word: Russian for Cyrillic, else English."""
    if _CYRILLIC_RE.search(word):
        return _RUSSIAN(word)
    return _ENGLISH(word)


# Folded Cyrillic (no ё, Kazakh letters already Russian) -> a common Latin spelling.
_TO_LATIN = str.maketrans({
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p",
    "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch",
    "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
})


@lru_cache(maxsize=4096)
def to_latin(text: str) -> str:
    """Transliterate normalised Cyrillic to Latin (``каспийский`` -> ``kaspiyskiy``)."""
    return text.translate(_TO_LATIN)


#: The shortest word prefix a term may end with ``*``: shorter ones match half the language.
MIN_PREFIX = 3
# Characters an operator might bring from regular expressions or search engines.
_FOREIGN_SYNTAX = set("?|()[]{}\\^$+~!<>=#%")


def _is_word_char(ch: str) -> bool:
    return WORD_RE.fullmatch(ch) is not None


@lru_cache(maxsize=1 << 16)  # a rule load asks again for every duplicate check, the
# matcher again when it compiles: room for a large rule set's terms
def term_words(term: str) -> tuple[tuple[str, bool], ...]:
    """A rule term -> its normalised words, each with ``True`` when it ends in ``*``.

    ``Caspian Pipeline Consortium`` is three words that must follow each other
    (punctuation between them does not matter); ``бидай*`` is one word matching
    any word that starts with ``бидай``. Raises ValueError, with a message for
    the rule author, when the term is no valid pattern.
    """
    norm = fold(term)
    for ch in norm:
        if ch in _FOREIGN_SYNTAX:
            raise ValueError(f"{ch!r} is not allowed in a term (write one term per entry; "
                             "'*' at the end of a word is the only wildcard)")
    for i, ch in enumerate(norm):
        if ch != "*":
            continue
        if i == 0 or not _is_word_char(norm[i - 1]):
            raise ValueError("'*' must directly follow a word")
        if i + 1 < len(norm) and (norm[i + 1] == "*" or _is_word_char(norm[i + 1])):
            raise ValueError("'*' may only end a word")
    words: list[tuple[str, bool]] = []
    for m in WORD_RE.finditer(norm):
        prefix = norm[m.end():m.end() + 1] == "*"
        if prefix and len(m.group()) < MIN_PREFIX:
            raise ValueError(f"the prefix '{m.group()}*' is too short "
                             f"(at least {MIN_PREFIX} letters before '*')")
        words.append((m.group(), prefix))
    if not words:
        raise ValueError("a term needs at least one letter or digit")
    return tuple(words)
