"""The matching engine: a rule set compiled once, then items matched against it.

This module owns how a rule decides on an item, the evidence it gives, and
why it decided so (:meth:`Matcher.explain`, the same steps with a trace).
It is pure (no I/O); it imports the standard library, rapidfuzz and the
package's normalisation, models and rule types only.

How a term matches (``rules/README.md`` tells rule authors the same):

* Text and terms are normalised alike (:mod:`monitor.normalize`) and split into
  words; a term of several words matches those words in order, next to each
  other (punctuation between them does not matter).
* A term word matches a text word that is the same word, has the same Snowball
  stem (``pipelines`` / ``pipeline``, ``пшеницы`` / ``пшеница``), or, for a
  Cyrillic stem of 5+ letters, starts with the stem and adds at most
  :data:`MAX_SUFFIX` letters (Kazakh ``экспортқа``, ``консорциумының``).
  ``word*`` matches any word starting with ``word``.
* A word of :data:`MIN_FUZZY_LENGTH` letters or more may also be misspelt: it
  matches when rapidfuzz's ``ratio`` reaches the term's ``fuzzy`` threshold.
  Shorter words (acronyms) always need their exact spelling.
* A term with a capital Cyrillic letter (a name, an acronym) also matches its
  Latin transliteration (``Kaspiyskiy``, ``KTK``).

Speed: every term word is indexed under the first 3-4 letters its matches
start with, and a word that may be misspelt also under the last 3 letters of
its stem (a typo rarely spoils both). Each distinct text word is looked up
once and the result memoised; an item none of whose words completes a topic
term is dismissed after a few C-level set operations. Each field is
normalised and split into words once. The scan then visits only the words
that start a phrase: those matching a one-word phrase, or the *pivot* of a
multi-word phrase (its longest word, which every occurrence must match, so
"the" in "close the border" starts nothing); they are picked out of the
field's words by set operations and ``itertools.compress``, and the other
words cost no Python step. A pivot that the index keys miss (a stem unlike
its word, a typo in both keys) is found when its text word is memoised: by
its stem, and by rapidfuzz with ``score_cutoff`` against the fuzzy pivots
within the typo length gaps. Occurrences are listed in the order a scan of
every word would list them, so verdicts and evidence are those of that
scan (``bench/check_verdicts.py`` compares them with a git revision's).

Many rules: each distinct term is compiled once for the rule set, and rules
that list the same terms (context, ``require`` and ``exclude`` lists are
shared by the dozen) share one compiled list. Per item, what a shared list
found, each term's hits with their context checked, the near terms'
occurrences, spans in the original text and evidence are worked out once
(:class:`_ItemMemo`) and read by every rule decided; a multi-word phrase is
checked once per sequence of words it meets (news repeats "to Russia").
A rule's ``require``, ``near`` and ``exclude`` are looked at only when its
topic occurred. Rules with the same ``require`` and ``exclude`` lists (a
rule's variants) are decided as a family (:class:`_Family`): a group found
nowhere rules them all out at once, and the verdict and evidence of each
distinct topic found are made once for the family.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from itertools import accumulate, compress, count
from operator import is_, itemgetter
from typing import NamedTuple

from rapidfuzz.fuzz import ratio
from rapidfuzz.process import extract

from monitor.models import Evidence, Match
from monitor.normalize import (
    WORD_RE,
    Normalized,
    is_cyrillic,
    normalize,
    stem,
    term_words,
    to_latin,
)
from monitor.rules import FIELDS, Requirement, Rule, RuleSet, Term
from monitor.score import grade

__all__ = ["MAX_EVIDENCE", "MAX_SUFFIX", "MIN_FUZZY_LENGTH", "Explanation", "Matcher",
           "NearMiss", "OutOfContext", "RequireCheck", "Veto"]

# -- thresholds ------------------------------------------------------------------
# One table for every matching bound. rules/README.md teaches their effect; a
# change here updates that text and a case in tests/test_match.py or
# tests/data/rule_cases/.

#: Words shorter than this are matched exactly: one letter off in an acronym
#: ("CPC" / "CPT") or a short word ("ban" / "bank") is another word.
MIN_FUZZY_LENGTH = 5
#: A misspelling is about one edit: a text word this many letters longer or
#: shorter than the term word is another word, however high ``ratio`` scores it
#: ("electricity" is no typo of "electronic"); stems may differ by one letter.
MAX_TYPO_LENGTH_GAP = 2
MAX_TYPO_STEM_GAP = 1
#: Letters a text word may add after a term's Cyrillic stem and still match:
#: Russian endings and stacked Kazakh suffixes (``-лардың``) stay under it.
MAX_SUFFIX = 7
#: ... when that stem has this many letters: "газ" must not reach "газета".
MIN_SUFFIX_STEM = 5
#: Kazakh case and plural endings, folded as the text is (қ -> к, ң -> н, і -> и...).
#: A short Cyrillic name keeps its whole dictionary form before them, so
#: "Ақтаудан" (from Aktau) and "Бакуге" (to Baku) match "Актау" and "Баку",
#: whose Russian stems are too short for :data:`MAX_SUFFIX`.
KAZAKH_ENDINGS = frozenset((
    "га", "ге", "ка", "ке", "на", "не", "да", "де", "та", "те",  # to, in
    "нда", "нде", "дан", "ден", "тан", "тен", "нан", "нен",  # in, from
    "нын", "нин", "дын", "дин", "тын", "тин",  # of
    "ды", "ди", "ты", "ти", "ны", "ни",  # (object)
    "мен", "бен", "пен",  # with
    "лар", "лер", "дар", "дер", "тар", "тер",  # plural
    "ы", "и", "сы", "си", "ына", "ине", "ында", "инде", "ынан", "инен", "ыны", "ини",
    "ынын", "инин",  # possessive, and its cases
    "дагы", "деги", "тагы", "теги", "ндагы", "ндеги",  # located in
))
#: ... for a dictionary form of at least this many letters, and only in a text
#: that is Kazakh, which shows in its letters: in Russian, "Бакунин" is a name,
#: not "Баку" + "нің" (of Baku).
MIN_KAZAKH_BASE = 4
KAZAKH_LETTERS = frozenset("әғқңөұүһіӘҒҚҢӨҰҮҺІ")
_KAZAKH_RE = re.compile(f"[{''.join(sorted(KAZAKH_LETTERS))}]")  # a search: C, no set per char
#: Index keys: the first letters a matching word starts with, and, for a word
#: that may be misspelt, the last letters of its stem (a typo rarely spoils both).
KEY_LENGTH = 4
TAIL_LENGTH = 3
MIN_TAIL_STEM = 6
#: Evidence entries kept per hit: enough to explain it, bounded for storage.
MAX_EVIDENCE = 12
#: Explain names a text word whose similarity to a term's word falls short of the
#: term's ``fuzzy`` by less than this (a typo one letter too far), at most
#: :data:`MAX_NEAR_MISSES` per term list.
NEAR_MISS = 15.0
MAX_NEAR_MISSES = 5

_EXACT = 101.0  # a fuzzy threshold no ratio reaches
_CYRILLIC_CAPITAL_RE = re.compile(r"[А-ЯЁӘҒҚҢӨҰҮҺІ]")


class _Word:
    """One compiled term word and how text words are compared with it."""

    __slots__ = ("fuzzy", "kazakh", "prefix", "stem", "suffix", "text")

    def __init__(self, text: str, stem_: str, *, prefix: bool, suffix: int,
                 fuzzy: float, kazakh: bool = False) -> None:
        self.text = text
        self.stem = stem_
        self.prefix = prefix
        self.suffix = suffix      # letters allowed after the stem (0: the stems must be equal)
        self.fuzzy = fuzzy        # ratio threshold, or _EXACT
        self.kazakh = kazakh      # may take a Kazakh ending after its whole dictionary form

    @property
    def key(self) -> str:
        """What every matching word starts with (:data:`KEY_LENGTH` letters at most)."""
        if self.prefix:
            return self.text[:KEY_LENGTH]
        common = 0
        for a, b in zip(self.text, self.stem, strict=False):
            if a != b:
                break
            common += 1
        # A stem may end unlike its word ("city" -> "citi"): key on the part they share.
        if common >= 3:
            return self.text[:min(KEY_LENGTH, common)]
        return self.text[:KEY_LENGTH]

    @property
    def tail(self) -> str | None:
        """A second key for a word that may be misspelt: the last letters of its stem.

        A typo inside the first letters (the :attr:`key`) leaves these intact,
        so the word is still found, then scored.
        """
        if self.prefix or self.fuzzy > 100 or len(self.stem) < MIN_TAIL_STEM:
            return None
        return self.stem[-TAIL_LENGTH:]

    def takes_kazakh_ending(self, word: str) -> bool:
        """Whether ``word`` is this word with a Kazakh ending (a match in Kazakh text)."""
        return (self.kazakh and word.startswith(self.text)
                and word[len(self.text):] in KAZAKH_ENDINGS)

    def score(self, word: str, stems: dict[str, str]) -> float:
        """0 when ``word`` does not match, else its similarity (100 for a sure match).
        Kazakh endings aside: see :meth:`takes_kazakh_ending`."""
        if self.prefix:
            return 100.0 if word.startswith(self.text) else 0.0
        if word == self.text:
            return 100.0
        if self.suffix and word.startswith(self.stem) and len(word) - len(self.stem) <= self.suffix:
            return 100.0
        word_stem = stems.get(word)
        if word_stem is None:
            word_stem = stems[word] = stem(word)
        if word_stem == self.stem:
            return 100.0
        if self.fuzzy > 100 or len(word) < MIN_FUZZY_LENGTH:
            return 0.0
        return self._typo(word, word_stem, self.fuzzy)

    def _typo(self, word: str, word_stem: str, cutoff: float) -> float:
        """How like a misspelling of this word ``word`` is (0 under ``cutoff``)."""
        best = 0.0
        if abs(len(word) - len(self.text)) <= MAX_TYPO_LENGTH_GAP:
            best = ratio(self.text, word, score_cutoff=cutoff)
        if abs(len(word_stem) - len(self.stem)) <= MAX_TYPO_STEM_GAP:
            best = max(best, ratio(self.stem, word_stem, score_cutoff=cutoff))
        return best

    def near_miss(self, word: str, stems: dict[str, str]) -> float:
        """The similarity :meth:`score` would compare with ``fuzzy``, when it falls
        short by less than :data:`NEAR_MISS` (explain: "spelt too differently"); else 0."""
        if self.prefix or self.fuzzy > 100 or len(word) < MIN_FUZZY_LENGTH:
            return 0.0
        word_stem = stems.get(word)
        if word_stem is None:
            word_stem = stems[word] = stem(word)
        similarity = self._typo(word, word_stem, self.fuzzy - NEAR_MISS)
        return similarity if similarity < self.fuzzy else 0.0


def _compile_words(term: Term) -> list[tuple[_Word, ...]]:
    """A term -> its word sequences: as written, and transliterated when a Cyrillic name."""
    words = term_words(term.text)
    variants = [tuple(_make_word(w, prefix, term.fuzzy) for w, prefix in words)]
    # Names and acronyms (a capital Cyrillic letter) are spelt in Latin too
    # ("KTK", "Kaspiyskiy"); common words are not: "диверси*" would meet "diversify".
    if _CYRILLIC_CAPITAL_RE.search(term.text):
        variants.append(tuple(_make_word(w, prefix, term.fuzzy, latin=True) for w, prefix in words))
    return variants


def _make_word(word: str, prefix: bool, fuzzy: float, *, latin: bool = False) -> _Word:
    if prefix:
        # The '*' is the author's chosen looseness: no typo tolerance on top of it.
        return _Word(to_latin(word) if latin else word, "", prefix=True, suffix=0, fuzzy=_EXACT)
    threshold = fuzzy if len(word) >= MIN_FUZZY_LENGTH and fuzzy < 100 else _EXACT
    word_stem = stem(word)
    cyrillic = is_cyrillic(word)
    suffix = MAX_SUFFIX if cyrillic and len(word_stem) >= MIN_SUFFIX_STEM else 0
    if latin and cyrillic:
        # A transliterated Russian word inflects as in Russian ("kaspiyskogo"):
        # match on its transliterated stem as a prefix.
        return _Word(to_latin(word), to_latin(word_stem), prefix=False,
                     suffix=MAX_SUFFIX if len(word_stem) >= MIN_SUFFIX_STEM else 0,
                     fuzzy=threshold)
    return _Word(word, word_stem, prefix=False, suffix=suffix, fuzzy=threshold,
                 kazakh=cyrillic and len(word) >= MIN_KAZAKH_BASE)


#: The multi-word phrases a text word pivots, by where they lie around it: (group id,
#: the pivot's place in each, their length, the phrases).
_Starts = tuple[tuple[int, int, int, tuple[int, ...]], ...]


class _Occ(NamedTuple):
    """One occurrence of a compiled word sequence in a field (a tuple: made by the
    thousand per article, where a dataclass costs three times as much)."""

    field: str
    first: int    # index of its first word
    last: int     # index after its last word
    start: int    # character span in the normalised field
    end: int
    score: float
    #: Its place in evidence: field by field, then leftmost, longest, best (a sort
    #: key made with the occurrence, so that evidence sorts in C).
    order: tuple[int, int, int, float]


class _Found(NamedTuple):
    """An occurrence seen as one rule term (and the context that let it count); a
    tuple, made by the dozen per item and rule."""

    term: Term
    occ: _Occ
    context: tuple[_Found, ...] = ()


@dataclass(frozen=True, slots=True)
class OutOfContext:
    """A topic term that occurs but does not count: none of its ``near`` terms is close."""

    evidence: Evidence
    near: tuple[str, ...]  # the near terms, as written
    within: int | None


@dataclass(frozen=True, slots=True)
class Veto:
    """An ``exclude`` term that occurs, and the topic occurrences it cancels."""

    evidence: Evidence
    within: int | None
    cancelled: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class RequireCheck:
    """One ``require`` group: its occurrences that count, and those too far from the topic."""

    name: str  # the group's name, else "#1", "#2"... in file order
    terms: tuple[str, ...]  # its terms, as written
    within: int | None
    found: tuple[Evidence, ...]
    too_far: tuple[Evidence, ...]  # beyond ``within`` words of every topic term left

    @property
    def met(self) -> bool:
        return bool(self.found)


@dataclass(frozen=True, slots=True)
class NearMiss:
    """A text word spelt too unlike a term's word to match it, by a little: its
    similarity is under the term's ``fuzzy`` threshold by less than :data:`NEAR_MISS`."""

    where: str  # "topic", or the name of the require group ("#1"... when it has none)
    term: str  # the term, as written
    word: str  # the term's word it resembles
    field: str
    text: str  # the text word, as written
    start: int
    end: int
    similarity: float
    fuzzy: float


@dataclass(frozen=True, slots=True)
class Explanation:
    """:meth:`Matcher.explain`: a rule's verdict on an item, and what led to it.

    ``match`` is the verdict, what :meth:`Matcher.match` gives for the rule
    (None: no hit). ``topic``: the topic terms found, that count (before any
    exclusion); ``out_of_context``: the ones found without their ``near`` terms.
    """

    rule_id: str
    match: Match | None
    terms: tuple[str, ...]  # the rule's topic terms, as written
    topic: tuple[Evidence, ...]
    out_of_context: tuple[OutOfContext, ...]
    vetoes: tuple[Veto, ...]
    groups: tuple[RequireCheck, ...]
    #: For a miss: words almost spelt like a word of a topic term (none found) or of
    #: a require group that found nothing.
    near_misses: tuple[NearMiss, ...] = ()

    @property
    def matched(self) -> bool:
        return self.match is not None

    @property
    def topic_left(self) -> bool:
        """Whether some topic occurrence survives the exclusions."""
        cancelled = {e for v in self.vetoes for e in v.cancelled}
        return any(e not in cancelled for e in self.topic)


@dataclass(slots=True)
class _Trace:
    """What :meth:`Matcher._decide` saw, recorded when explaining."""

    dismissed: bool  # by the prefilter: the topic is not looked for
    topic: list[_Found] = field(default_factory=list)
    out_of_context: list[_Found] = field(default_factory=list)
    vetoes: list[tuple[_Found, list[_Found]]] = field(default_factory=list)
    groups: list[tuple[Requirement, list[_Found], list[_Found]]] = field(default_factory=list)

    def explanation(self, rule: Rule, verdict: Match | None, texts: dict[str, str],
                    norms: dict[str, Normalized]) -> Explanation:
        def ev(found: Iterable[_Found]) -> tuple[Evidence, ...]:
            return tuple(_one_evidence(f, texts, norms) for f in found)

        return Explanation(
            rule_id=rule.id, match=verdict, terms=tuple(t.text for t in rule.terms),
            topic=ev(self.topic),
            out_of_context=tuple(OutOfContext(_one_evidence(f, texts, norms),
                                              tuple(n.text for n in f.term.near),
                                              f.term.within)
                                 for f in self.out_of_context),
            vetoes=tuple(Veto(_one_evidence(v, texts, norms), v.term.within, ev(cancelled))
                         for v, cancelled in self.vetoes),
            groups=tuple(RequireCheck(req.name or f"#{n}", tuple(t.text for t in req.terms),
                                      req.within, ev(found), ev(far))
                         for n, (req, found, far) in enumerate(self.groups, start=1)))


def _one_evidence(f: _Found, texts: dict[str, str], norms: dict[str, Normalized]) -> Evidence:
    start, end = norms[f.occ.field].span(f.occ.start, f.occ.end)
    return _evidence_at(f, start, end, texts)


def _evidence_at(f: _Found, start: int, end: int, texts: dict[str, str]) -> Evidence:
    """The Evidence of a found entry whose span in the original text is start-end."""
    return Evidence(field=f.occ.field, term=f.term.text, text=texts[f.occ.field][start:end],
                    start=start, end=end, score=round(f.occ.score, 1))


class _CTerm:
    """A rule term compiled: its phrase ids, fields and context (near terms, compiled)."""

    __slots__ = ("fields", "near", "near_index", "phrases", "term", "within")

    def __init__(self, term: Term, phrases: tuple[int, ...], near: tuple[_CTerm, ...],
                 near_index: _NearIndex) -> None:
        self.term = term
        self.phrases = phrases
        self.fields = frozenset(term.fields)
        self.near = near
        self.near_index = near_index
        self.within = term.within


#: A near list by phrase id: (rank, phrase, near term) for each of its terms' phrases,
#: rank their order in the list (shared by the terms that share the list).
_NearIndex = dict[int, list[tuple[int, int, "_CTerm"]]]


def _near_index(near: tuple[_CTerm, ...]) -> _NearIndex:
    index: _NearIndex = defaultdict(list)
    pairs = [(term, pid) for term in near for pid in term.phrases]
    for rank, (nt, pid) in enumerate(pairs):
        index[pid].append((rank, pid, nt))
    return dict(index)


class _Phrases(dict[int, tuple["_CTerm", ...]]):
    """phrase id -> the terms it serves, so a rule looks only at what occurred;
    ``rank``: each phrase's place in that order."""

    rank: dict[int, int]


def _by_phrase(cterms: Iterable[_CTerm]) -> _Phrases:
    out: dict[int, list[_CTerm]] = defaultdict(list)
    for ct in cterms:
        for pid in ct.phrases:
            out[pid].append(ct)
    phrases = _Phrases((pid, tuple(cts)) for pid, cts in out.items())
    phrases.rank = {pid: k for k, pid in enumerate(phrases)}
    return phrases


class _Family:
    """The rules that share their ``require`` groups and exclusions (the same compiled
    lists: variants of one rule, a desk's rules written from one template). Per item,
    what those lists found, and the verdict for each topic found, are worked out once
    for the family (:class:`_Verdicts`)."""

    __slots__ = ("exclude", "require")

    def __init__(self, require: tuple[tuple[int | None, _Phrases], ...],
                 exclude: _Phrases) -> None:
        self.require = require
        self.exclude = exclude


class _CRule:
    """A rule compiled: each of its term lists keyed by phrase id."""

    __slots__ = ("exclude", "family", "require", "rule", "topic", "topic_texts")

    def __init__(self, rule: Rule, topic: tuple[_CTerm, ...],
                 require: tuple[tuple[int | None, tuple[_CTerm, ...]], ...],
                 exclude: tuple[_CTerm, ...],
                 shared: dict[tuple[int, ...], _Phrases],
                 families: dict[tuple[object, ...], _Family]) -> None:
        def by_phrase(cterms: tuple[_CTerm, ...]) -> _Phrases:
            # Rules that list the same terms share one object: what a list found in
            # an item is then worked out once for all of them (``Matcher._found_once``).
            key = tuple(id(ct) for ct in cterms)
            got = shared.get(key)
            if got is None:
                got = shared[key] = _by_phrase(cterms)
            return got

        self.rule = rule
        self.topic_texts = frozenset(t.text for t in rule.terms)  # what grade() tells apart
        self.topic = by_phrase(topic)
        self.require = tuple((within, by_phrase(cts)) for within, cts in require)
        self.exclude = by_phrase(exclude)
        key = (*((within, id(lst)) for within, lst in self.require), id(self.exclude))
        family = families.get(key)
        if family is None:
            family = families[key] = _Family(self.require, self.exclude)
        self.family = family


_FIELD_ORDER = {f: i for i, f in enumerate(FIELDS)}  # evidence is listed field by field
_RANK = _ORDER = itemgetter(0)

#: A found entry (or one of its context) ready for evidence: its place in evidence
#: (``_Occ.order``) and the entry.
_Ready = tuple[tuple[int, int, int, float], _Found]

#: :data:`WORD_RE` as a split: the separators and the words, alternating.
_SPLIT_RE = re.compile(f"({WORD_RE.pattern})")


class _Field:
    """One normalised field's words, split once per item: ``words`` in order,
    ``distinct`` for the set operations, and ``bounds`` (on demand, for the
    occurrences' offsets): word ``i`` spans ``bounds[2i]`` to ``bounds[2i + 1]``."""

    __slots__ = ("_bounds", "_parts", "distinct", "words")

    def __init__(self, text: str) -> None:
        # One pass of the regex: separators and words alternate, the words are the
        # odd ones (a tuple: its slices are memo keys).
        self._parts = _SPLIT_RE.split(text)
        self.words: tuple[str, ...] = tuple(self._parts[1::2])
        self.distinct = set(self.words)
        self._bounds: list[int] | None = None

    @property
    def bounds(self) -> list[int]:
        if self._bounds is None:
            # The lengths of separators and words, summed as they come, all in C.
            self._bounds = list(accumulate(map(len, self._parts)))
        return self._bounds


class _Verdicts:
    """One family's lists on one item (see :class:`_Family`): what each ``require``
    group found anywhere, the exclusions found, and the evidence of each topic found
    (by the identity of its entries; None: no hit)."""

    __slots__ = ("anywhere", "made", "plain", "ready", "vetoes")

    def __init__(self, family: _Family, anywhere: list[list[_Found]],
                 vetoes: list[_Found]) -> None:
        self.anywhere = anywhere
        self.vetoes = vetoes
        #: No exclusion found and no group bound by ``within``: a topic found is a hit
        #: with every group's entries (what :meth:`Matcher._verdict` would say).
        self.plain = not vetoes and all(within is None for within, _ in family.require)
        #: The evidence of each topic found (by the identity of its entries; None: no
        #: hit), with the terms it names (what tells apart the scores of rules sharing it).
        self.made: dict[tuple[int, ...],
                        tuple[tuple[Evidence, ...], frozenset[str]] | None] = {}
        #: The groups' entries, ready for evidence (:meth:`Matcher._ready`), when a hit
        #: keeps all of them (no ``within``): the part of evidence the family shares.
        self.ready: list[_Ready] | None = None


class _ItemMemo:
    """What :meth:`Matcher.match` works out once per item for all the rules it decides:
    the occurrences of a shared term list, spans in the original text, evidence."""

    __slots__ = ("entries", "evidence", "families", "found", "grades", "near", "ready",
                 "spans", "terms")

    def __init__(self) -> None:
        #: By id(_Family); None: a require group found nowhere, no rule of it hits.
        self.families: dict[int, _Verdicts | None] = {}
        self.near: dict[int, list[tuple[_Occ, Term]]] = {}
        self.found: dict[int, list[_Found]] = {}
        self.terms: dict[tuple[int, int], list[_Found]] = {}
        self.spans: dict[tuple[str, int, int], tuple[str, int, int]] = {}
        self.evidence: dict[tuple[tuple[str, int, int], str, float], Evidence] = {}
        self.grades: dict[tuple[int, frozenset[str]], float] = {}
        self.ready: dict[int, tuple[_Ready, ...]] = {}  # by id(_Found): it and its context
        #: By id(_Found): its span in the original text, and its Evidence once made.
        self.entries: dict[int, tuple[tuple[str, int, int], Evidence | None]] = {}


def _distance(a: _Occ, b: _Occ) -> int:
    """Words strictly between two occurrences of one field (0 when they touch or overlap)."""
    return max(0, b.first - a.last, a.first - b.last)


class Matcher:
    """A rule set compiled for matching; build it once, call :meth:`match` per item.

    Not thread-safe: it memoises, per distinct text word, which term words it
    matches (news reuses its vocabulary, so most words are looked up once).
    """

    #: Distinct words memoised before the memo starts afresh (bounds a daemon's memory).
    MEMO_SIZE = 200_000
    #: Word sequences memoised (``_windows``) before that memo starts afresh
    #: (~0.1 KB each; 6,900 after 16,000 items of the three bench mixes).
    WINDOWS_SIZE = 50_000

    def __init__(self, rules: RuleSet) -> None:
        self._rules = rules
        self._phrases: list[tuple[_Word, ...]] = []
        phrase_ids: dict[tuple[tuple[str, str, bool, int, float], ...], int] = {}
        index: dict[str, list[tuple[int, int]]] = defaultdict(list)
        tails: dict[str, list[tuple[int, int]]] = defaultdict(list)

        fields: set[str] = set()

        # Rules share their context terms by the dozen: each distinct term is compiled
        # once. Keyed by its fields, not the Term (whose hash walks its near terms).
        compiled: dict[object, _CTerm] = {}
        near_keys: dict[int, object] = {}  # id(term.near) -> its key (a file's aliases)
        near_lists: dict[tuple[int, ...], tuple[_CTerm, ...]] = {}
        near_indexes: dict[int, _NearIndex] = {}  # id(a near list) -> its index

        def term_key(term: Term) -> object:
            if not term.near:
                return (term.text, term.fuzzy, term.fields, term.within)
            key = near_keys.get(id(term.near))
            if key is None:
                key = near_keys[id(term.near)] = tuple(
                    (n.text, n.fuzzy, n.fields, n.within) if not n.near else n
                    for n in term.near)
            return (term.text, term.fuzzy, term.fields, term.within, key)

        def compile_term(term: Term) -> _CTerm:
            key = term_key(term)
            known = compiled.get(key)
            if known is not None:
                return known
            fields.update(term.fields)
            ids: list[int] = []
            for words in _compile_words(term):
                sig = tuple((w.text, w.stem, w.prefix, w.suffix, w.fuzzy) for w in words)
                pid = phrase_ids.get(sig)
                if pid is None:
                    pid = phrase_ids[sig] = len(self._phrases)
                    self._phrases.append(words)
                    for j, w in enumerate(words):
                        index[w.key].append((pid, j))
                        if w.tail is not None:
                            tails[w.tail].append((pid, j))
                if pid not in ids:
                    ids.append(pid)
            near = tuple(compile_term(n) for n in term.near)
            near = near_lists.setdefault(tuple(id(n) for n in near), near)  # one per list
            by_near = near_indexes.get(id(near))
            if by_near is None:
                by_near = near_indexes[id(near)] = _near_index(near)
            ct = compiled[key] = _CTerm(term, tuple(ids), near, by_near)
            return ct

        self._crules: list[_CRule] = []
        shared: dict[tuple[int, ...], _Phrases] = {}
        families: dict[tuple[object, ...], _Family] = {}
        for rule in rules.rules:
            topic = tuple(compile_term(t) for t in rule.terms)
            require = tuple((g.within, tuple(compile_term(t) for t in g.terms))
                            for g in rule.require)
            exclude = tuple(compile_term(t) for t in rule.exclude)
            self._crules.append(_CRule(rule, topic, require, exclude, shared, families))
        #: phrase id -> the rules whose topic it serves: (rule, the phrase's rank in the
        #: rule's topic list, its terms there), so that each candidate rule gets the
        #: topic phrases that occurred, in order, without looking through its list.
        users: dict[int, list[tuple[int, int, tuple[_CTerm, ...]]]] = defaultdict(list)
        for r, cr in enumerate(self._crules):
            for pid, cterms in cr.topic.items():
                users[pid].append((r, cr.topic.rank[pid], cterms))
        self._topic_users = {pid: tuple(listed) for pid, listed in users.items()}
        self._fields = tuple(f for f in FIELDS if f in fields)
        self._index = dict(index)
        self._tails = dict(tails)
        self._stems: dict[str, str] = {}
        self._memo: dict[str, tuple[tuple[int, int, float], ...]] = {}
        self._kazakh_memo: dict[str, tuple[tuple[int, int, float], ...]] = {}  # Kazakh text only
        self._topic_words: set[str] = set()  # memoised words that match a topic term's word
        self._topic_hits: dict[str, tuple[tuple[int, int], ...]] = {}  # ... and which
        self._topic_whole: set[str] = set()  # ... a one-word topic phrase, alone
        self._topic_pivots: dict[str, tuple[int, ...]] = {}  # ... a topic phrase's pivot
        # The scan starts an occurrence only at its phrase's pivot, one word that every
        # occurrence must match there: the word fewest phrases share, then the longest,
        # so that "the" in "close the border" (or a word 50 rules use) does not start
        # candidates at every turn. Any word would give the same occurrences.
        uses: dict[str, int] = defaultdict(int)
        for ph in self._phrases:
            for w in ph:
                uses[w.text] += 1
        # Words of three letters or less ("to", "in", "the", "for") are the commonest
        # in any text, however few phrases use them: they pivot only a phrase of such words.
        self._pivot = [min(range(len(ph)), key=[(len(w.text) <= 3, uses[w.text], -len(w.text))
                                                for w in ph].__getitem__)
                       for ph in self._phrases]
        by_stem: dict[str, list[tuple[int, int]]] = defaultdict(list)
        typo_texts: dict[int, list[tuple[str, tuple[int, int]]]] = defaultdict(list)
        typo_stems: dict[int, list[tuple[str, tuple[int, int]]]] = defaultdict(list)
        for pid, (phrase, pivot) in enumerate(zip(self._phrases, self._pivot, strict=True)):
            w = phrase[pivot]
            if len(phrase) == 1 or w.prefix:
                continue  # a single word, a prefix: what the index finds is all there is
            by_stem[w.stem].append((pid, pivot))
            if w.fuzzy <= 100:
                typo_texts[len(w.text)].append((w.text, (pid, pivot)))
                typo_stems[len(w.stem)].append((w.stem, (pid, pivot)))
        self._pivot_stems = dict(by_stem)
        self._typo_texts = dict(typo_texts)
        self._typo_stems = dict(typo_stems)
        self._typo_cutoff = min((w.fuzzy for ph in self._phrases for w in ph), default=_EXACT)
        self._typo_choices: dict[tuple[str, int],
                                 tuple[list[str], list[list[tuple[int, int]]]]] = {}
        #: word -> its phrase starts: (phrase, score) for one-word phrases, and the
        #: multi-word phrases whose pivot it matches, grouped by where their words lie
        #: around it (``_Starts``); ``_kazakh_starts`` in Kazakh text.
        self._starts: dict[str, tuple[tuple[tuple[int, float], ...], _Starts]] = {}
        self._kazakh_starts: dict[str, tuple[tuple[tuple[int, float], ...], _Starts]] = {}
        self._groups: dict[tuple[int, int, tuple[int, ...]], int] = {}  # -> its id
        self._known: dict[str, dict[tuple[int, int], float]] = {}  # word -> memo, as a dict
        self._kazakh_known: dict[str, dict[tuple[int, int], float]] = {}
        #: (phrase, word position, text word) -> (score, takes a Kazakh ending): the
        #: words next to an occurrence that their index keys missed.
        self._missed: dict[tuple[int, int, str], tuple[float, bool]] = {}
        #: (group of phrases, Kazakh text, the words where they would lie) -> those
        #: that occur there, each with what ``_complete`` said.
        self._windows: dict[tuple[int, bool, tuple[str, ...]],
                            tuple[tuple[int, tuple[int, int, float]], ...]] = {}

    @classmethod
    def compile(cls, rules: RuleSet) -> Matcher:
        return cls(rules)

    @property
    def rules(self) -> RuleSet:
        return self._rules

    # -- matching ---------------------------------------------------------------

    def match(self, title: str, summary: str, content: str = "") -> list[Match]:
        """One :class:`Match` per rule that hits the item, in rule-set order.
        ``content``: the article's main text, where it was fetched (full_text)."""
        texts = {"title": title or "", "summary": summary or "", "content": content or ""}
        norms = {f: normalize(texts[f]) for f in self._fields}
        fields = self._tokenize(norms)
        if not self._may_hit(fields):
            return []
        return self._hits(self._occurrences(texts, fields), texts, norms)

    def _hits(self, occs: dict[int, list[_Occ]], texts: dict[str, str],
              norms: dict[str, Normalized]) -> list[Match]:
        """:meth:`match`'s verdicts: the rules some topic phrase of which occurs, decided."""
        users = self._topic_users
        # The candidate rules, each with its topic phrases that occurred.
        topics: dict[int, list[tuple[int, int, tuple[_CTerm, ...]]]] = {}
        for pid in occs:
            for r, rank, cterms in users.get(pid, ()):
                listed = topics.get(r)
                if listed is None:
                    topics[r] = [(rank, pid, cterms)]
                else:
                    listed.append((rank, pid, cterms))
        out: list[Match] = []
        memo = _ItemMemo()
        families = memo.families
        crules = self._crules
        for r in sorted(topics):
            cr = crules[r]
            family = cr.family
            # The family's lists first: a require group found nowhere rules out every
            # rule of the family (a 200-rule set: ~3 candidates in 10) at one look-up.
            key = id(family)
            if key in families:
                verdicts = families[key]
            else:
                verdicts = families[key] = self._family_verdicts(family, occs, memo)
            if verdicts is None:
                continue
            topic = self._topic_found(topics[r], occs, memo)
            if not topic:
                continue
            # Rules of a family whose topics found the very same entries (the found
            # lists are shared per item) reach the same verdict and evidence: made once.
            found = tuple(map(id, topic))
            if found in verdicts.made:
                made = verdicts.made[found]
            else:
                evidence = self._made(cr, topic, verdicts, texts, norms, memo)
                made = verdicts.made[found] = (
                    None if evidence is None else (evidence, frozenset(e.term for e in evidence)))
            if made is None:
                continue
            evidence, terms = made
            # The score reads only which entries are the rule's topic terms: rules that
            # share the evidence and which of its terms are topic terms share the score.
            graded = (id(evidence), cr.topic_texts & terms)
            score = memo.grades.get(graded)
            if score is None:
                score = memo.grades[graded] = grade(cr.rule, evidence, cr.topic_texts)
            out.append(Match(cr.rule.id, score, evidence))
        return out

    def explain(self, rule_id: str, title: str, summary: str, content: str = "") -> Explanation:
        """Why rule ``rule_id`` hits the item or not, term by term.

        The same steps as :meth:`match` (prefilter, scan, :meth:`_decide`) with a
        trace kept, so the verdict (``Explanation.match``) is exactly what
        :meth:`match` gives for that rule. Raises KeyError for an unknown rule.
        """
        r = next((i for i, cr in enumerate(self._crules) if cr.rule.id == rule_id), None)
        if r is None:
            raise KeyError(rule_id)
        texts = {"title": title or "", "summary": summary or "", "content": content or ""}
        norms = {f: normalize(texts[f]) for f in self._fields}
        fields = self._tokenize(norms)
        # Dismissed by the prefilter, the rule's topic is not looked for (as in
        # match); the rest is still scanned, to say which other terms occur.
        trace = _Trace(dismissed=not self._may_hit(fields))
        occs = self._occurrences(texts, fields)
        cr = self._crules[r]
        verdict = self._decide(cr, occs, texts, norms, trace)
        why = trace.explanation(cr.rule, verdict, texts, norms)
        if verdict is not None:
            return why
        lists = [("topic", cr.topic)] if not why.topic and not why.out_of_context else []
        lists += [(g.name, by_phrase) for g, (_, by_phrase) in zip(why.groups, cr.require,
                                                                  strict=True)
                  if not g.found and not g.too_far]
        near = [m for where, by_phrase in lists
                for m in self._near_misses(where, by_phrase, texts, norms)]
        return replace(why, near_misses=tuple(near))

    def _near_misses(self, where: str, by_phrase: dict[int, tuple[_CTerm, ...]],
                     texts: dict[str, str], norms: dict[str, Normalized]) -> list[NearMiss]:
        """The text words that a word of these terms misses by a little (explain only:
        the verdict never reads this)."""
        words = {f: [(m.group(), m.span()) for m in WORD_RE.finditer(norms[f].text)]
                 for f in self._fields}
        best: dict[tuple[str, int], NearMiss] = {}  # one per text word: its closest term
        for pid, cterms in by_phrase.items():
            for ct in cterms:
                for w in self._phrases[pid]:
                    for f in ct.fields:
                        for word, (a, b) in words.get(f, ()):
                            similarity = w.near_miss(word, self._stems)
                            known = best.get((f, a))
                            if not similarity or (known and known.similarity >= similarity):
                                continue
                            start, end = norms[f].span(a, b)
                            best[(f, a)] = NearMiss(where, ct.term.text, w.text, f,
                                                    texts[f][start:end], start, end,
                                                    round(similarity, 1), w.fuzzy)
        return sorted(best.values(), key=lambda m: -m.similarity)[:MAX_NEAR_MISSES]

    @staticmethod
    def _tokenize(norms: dict[str, Normalized]) -> dict[str, _Field]:
        """Each normalised field's words, split once for the prefilter and the scan."""
        return {f: _Field(norm.text) for f, norm in norms.items()}

    def _may_hit(self, fields: dict[str, _Field]) -> bool:
        """The exact prefilter: False for an item none of whose words completes a topic term.

        It memoises the item's new words on the way (what :meth:`_scan` reads).
        """
        memo = self._memo
        if len(memo) > self.MEMO_SIZE:
            memo.clear()
            self._kazakh_memo.clear()
            self._stems.clear()
            self._topic_words.clear()
            self._topic_hits.clear()
            self._topic_whole.clear()
            self._topic_pivots.clear()
            for cache in (self._starts, self._kazakh_starts, self._groups, self._known,
                          self._kazakh_known, self._missed, self._windows):
                cache.clear()
        elif len(self._windows) > self.WINDOWS_SIZE:
            self._windows.clear()  # read only by the scan: it may start afresh alone
        present: set[str] = set()
        for fld in fields.values():
            words = fld.distinct
            for word in words.difference(memo):
                self._learn(word)
            present.update(self._topic_words.intersection(words))
        return bool(present) and self._may_occur(present)

    def _occurrences(self, texts: dict[str, str],
                     fields: dict[str, _Field]) -> dict[int, list[_Occ]]:
        """Every occurrence of every phrase in the item's fields (words memoised first)."""
        occs: dict[int, list[_Occ]] = defaultdict(list)
        # An ASCII string says so in its header (isascii is O(1)): English text is
        # never searched for Kazakh letters.
        kazakh = any(not text.isascii() and _KAZAKH_RE.search(text) for text in texts.values())
        for f, fld in fields.items():
            self._scan(f, fld, occs, kazakh)
        return occs

    def _may_occur(self, words: set[str]) -> bool:
        """Whether every word of some topic phrase is among ``words`` (order aside)."""
        if not self._topic_whole.isdisjoint(words):
            return True
        # A multi-word phrase whose pivot is not among them cannot be complete: the
        # others (a word 50 rules' phrases share pivots few of them) are not counted.
        covered: set[tuple[int, int]] = set()
        pivoted: set[int] = set()
        hits, pivots = self._topic_hits, self._topic_pivots
        for word in words:
            covered.update(hits[word])
            pivoted.update(pivots.get(word, ()))
        phrases = self._phrases
        return any(all((pid, j) in covered for j in range(len(phrases[pid])))
                   for pid in pivoted)

    def _learn(self, word: str) -> None:
        """Memoise every (phrase, word position, score) that a text word matches."""
        index = self._index
        phrases, stems = self._phrases, self._stems
        if len(word) >= KEY_LENGTH:
            found = index.get(word[:KEY_LENGTH], []) + index.get(word[:KEY_LENGTH - 1], [])
        else:
            found = index.get(word, [])
        if len(word) >= MIN_FUZZY_LENGTH and self._tails:
            word_stem = stems.get(word)
            if word_stem is None:
                word_stem = stems[word] = stem(word)
            more = self._tails.get(word_stem[-TAIL_LENGTH:])
            if more:
                found = list(dict.fromkeys(found + more))  # a word may be under both keys
        out = []
        kazakh = []
        topic = []
        for pid, j in found:
            w = phrases[pid][j]
            score = w.score(word, stems)
            if score:
                out.append((pid, j, score))
            elif w.takes_kazakh_ending(word):
                kazakh.append((pid, j, 100.0))
            else:
                continue
            if pid in self._topic_users:
                topic.append((pid, j))  # the prefilter may let a few more items through
        self._memo[word] = tuple(out)
        if kazakh:
            self._kazakh_memo[word] = tuple(kazakh)
        if topic:
            self._topic_words.add(word)
            self._topic_hits[word] = tuple(topic)
            if any(len(phrases[pid]) == 1 for pid, _ in topic):
                self._topic_whole.add(word)
            pivots = tuple(pid for pid, j in topic
                           if len(phrases[pid]) > 1 and j == self._pivot[pid])
            if pivots:
                self._topic_pivots[word] = pivots
        known = {(pid, j): score for pid, j, score in out}
        self._known[word] = known
        single, several = self._starts_of(out)
        several += self._pivots_missed(word, known)
        if single or several:
            self._starts[word] = (single, self._grouped(several))
        if kazakh:
            self._kazakh_known[word] = {(pid, j): score for pid, j, score in kazakh}
            single, several = self._starts_of(kazakh)
            if single or several:
                self._kazakh_starts[word] = (single, self._grouped(several))

    def _starts_of(self, found: list[tuple[int, int, float]]
                   ) -> tuple[tuple[tuple[int, float], ...], tuple[int, ...]]:
        """The phrase starts among a word's matches (see ``_starts``)."""
        phrases, pivot = self._phrases, self._pivot
        return (tuple((pid, score) for pid, j, score in found if len(phrases[pid]) == 1),
                tuple(pid for pid, j, _ in found
                      if len(phrases[pid]) > 1 and j == pivot[pid]))

    def _grouped(self, pids: tuple[int, ...]) -> _Starts:
        """Multi-word phrases that a word pivots, grouped by their pivot's place and
        their length: the phrases of a group lie over the same words of a text, and
        are checked against those words together (a common word pivots dozens)."""
        by_place: dict[tuple[int, int], list[int]] = {}
        for pid in pids:
            by_place.setdefault((self._pivot[pid], len(self._phrases[pid])), []).append(pid)
        out = []
        for (pivot, length), members in by_place.items():
            key = (pivot, length, tuple(members))
            gid = self._groups.setdefault(key, len(self._groups))
            out.append((gid, pivot, length, key[2]))
        return tuple(out)

    def _pivots_missed(self, word: str, known: dict[tuple[int, int], float]) -> tuple[int, ...]:
        """The multi-word phrases whose pivot ``word`` matches though the index keys
        missed it: by its stem (``dying`` / ``die``), or misspelt in both keys.

        Candidates come from the pivots of the same stem and, by rapidfuzz with
        ``score_cutoff``, the fuzzy pivots within the typo length gaps; each is
        then scored as the scan would score it, so the starts are exact."""
        stems = self._stems
        word_stem = stems.get(word)
        if word_stem is None:
            word_stem = stems[word] = stem(word)
        candidates = list(self._pivot_stems.get(word_stem, ()))
        if len(word) >= MIN_FUZZY_LENGTH and self._typo_texts:
            for what, text, gap in (("text", word, MAX_TYPO_LENGTH_GAP),
                                    ("stem", word_stem, MAX_TYPO_STEM_GAP)):
                choices, owners = self._typo_candidates(what, len(text), gap)
                for _, _, k in extract(text, choices, scorer=ratio, processor=None,
                                       score_cutoff=self._typo_cutoff, limit=None):
                    candidates.extend(owners[k])
        out: list[int] = []
        for pid, j in dict.fromkeys(candidates):
            if (pid, j) not in known and self._phrases[pid][j].score(word, stems):
                out.append(pid)
        return tuple(out)

    def _typo_candidates(self, what: str, length: int, gap: int
                         ) -> tuple[list[str], list[list[tuple[int, int]]]]:
        """The fuzzy pivots' texts (or stems) within ``gap`` letters of ``length``."""
        key = (what, length)
        got = self._typo_choices.get(key)
        if got is None:
            table = self._typo_texts if what == "text" else self._typo_stems
            owners: dict[str, list[tuple[int, int]]] = defaultdict(list)
            for n in range(length - gap, length + gap + 1):
                for text, owner in table.get(n, ()):
                    owners[text].append(owner)  # each text scored once, however many use it
            got = self._typo_choices[key] = (list(owners), list(owners.values()))
        return got

    def _missed_score(self, pid: int, j: int, word: str, kazakh: bool) -> float:
        """Word ``j`` of a phrase against a text word its index keys missed (a typo in
        both, or a stem unlike the word's start), memoised: 0 when it does not match."""
        key = (pid, j, word)
        known = self._missed.get(key)
        if known is None:
            w = self._phrases[pid][j]
            known = self._missed[key] = (w.score(word, self._stems),
                                         w.takes_kazakh_ending(word))
        score, ending = known
        return 100.0 if not score and kazakh and ending else score

    def _scan(self, field: str, fld: _Field, occs: dict[int, list[_Occ]], kazakh: bool) -> None:
        """Find every occurrence of every phrase in one normalised field
        (``kazakh``: the item is Kazakh text).

        Only the words that start a phrase (a one-word phrase, a multi-word
        phrase's pivot) are visited: the others are passed over by set
        operations and ``compress``, in C. Each occurrence is then checked word
        by word, and listed in the order of its first word the index found (as
        a scan of every word would list them).
        """
        starts = self._starts
        kazakh_starts = self._kazakh_starts if kazakh else {}
        visit = starts.keys() & fld.distinct
        if kazakh_starts:
            visit.update(kazakh_starts.keys() & fld.distinct)
        if not visit:
            return
        words = fld.words
        bounds = fld.bounds
        phrases = self._phrases
        windows = self._windows
        n_words = len(words)
        rank_of_field = _FIELD_ORDER[field]
        multi: dict[int, list[tuple[int, int, _Occ]]] = {}
        for i in compress(count(), map(visit.__contains__, words)):
            word = words[i]
            single, several = starts.get(word, ((), ()))
            if kazakh_starts and word in kazakh_starts:
                more = kazakh_starts[word]
                single, several = single + more[0], several + more[1]
            for pid, score in single:
                start, end = bounds[2 * i], bounds[2 * i + 1]
                occs[pid].append(_Occ(field, i, i + 1, start, end, score,
                                      (rank_of_field, start, -end, -score)))
            for gid, pivot, length, pids in several:
                first = i - pivot
                last = first + length
                if first < 0 or last > n_words:
                    continue
                # News repeats its word sequences ("to Russia", "through the"): each
                # group of phrases is checked once against each sequence of words it meets.
                key = (gid, kazakh, words[first:last])
                found = windows.get(key)
                if found is None:
                    found = windows[key] = tuple(
                        (pid, done) for pid in pids
                        if (done := self._complete(pid, phrases[pid], words, first, kazakh)))
                for pid, (met, rank, score) in found:
                    start, end = bounds[2 * first], bounds[2 * last - 1]
                    multi.setdefault(pid, []).append(
                        (first + met, rank, _Occ(field, first, last, start, end, score,
                                                 (rank_of_field, start, -end, -score))))
        for pid, listed in multi.items():
            if len(listed) > 1:
                listed.sort(key=lambda f: (f[0], f[1]))
            occs[pid].extend(f[2] for f in listed)

    def _complete(self, pid: int, phrase: tuple[_Word, ...], words: tuple[str, ...],
                  first: int, kazakh: bool) -> tuple[int, int, float] | None:
        """Whether phrase ``pid`` occurs at word ``first``: (the word where a scan of
        every word would have met it first, counted from ``first``, that word's rank
        among its matches,
        the occurrence's score), or None."""
        known_of, kazakh_of = self._known, self._kazakh_known
        total = weight = 0.0
        met: int | None = None
        for j, w in enumerate(phrase):
            word = words[first + j]
            word_score = known_of[word].get((pid, j))
            if word_score is None and kazakh and word in kazakh_of:
                word_score = kazakh_of[word].get((pid, j))
            if word_score is None:  # misspelt in both its keys: the index missed it
                word_score = self._missed_score(pid, j, word, kazakh)
                if not word_score:
                    return None
            elif met is None:
                met = j
            size = len(w.text)
            total += word_score * size
            weight += size
        if met is None:  # no word the index found: a scan of every word never saw it
            return None
        word = words[first + met]
        rank = 0
        for key in known_of[word]:
            if key == (pid, met):
                break
            rank += 1
        else:
            rank = len(known_of[word]) + list(kazakh_of[word]).index((pid, met))
        return met, rank, total / weight

    @staticmethod
    def _found(by_phrase: _Phrases, occs: dict[int, list[_Occ]],
               out_of_context: list[_Found] | None = None,
               memo: dict[tuple[int, int], list[_Found]] | None = None,
               near_memo: dict[int, list[tuple[_Occ, Term]]] | None = None) -> list[_Found]:
        """The occurrences of a term list in each term's fields, its context checked
        (those dropped for want of their ``near`` terms go to ``out_of_context``).
        ``memo``: each term's, per phrase, kept for the item (terms shared by rules)."""
        out: list[_Found] = []
        occurred = by_phrase.keys() & occs.keys()
        if not occurred:
            return out
        # The phrases that occurred, in the list's order.
        pids = sorted(occurred, key=by_phrase.rank.__getitem__) if len(occurred) > 1 else occurred
        for pid in pids:
            found = occs[pid]
            cterms = by_phrase[pid]
            if not found:
                continue
            for ct in cterms:
                if memo is not None:
                    key = (id(ct), pid)
                    known = memo.get(key)
                    if known is None:
                        known = memo[key] = Matcher._term_found(ct, found, occs, near_memo)
                    out.extend(known)
                    continue
                hits = [_Found(ct.term, o) for o in found if o.field in ct.fields]
                if hits and ct.near:
                    kept = Matcher._with_context(ct, hits, occs)
                    if out_of_context is not None:
                        spans = {k.occ for k in kept}
                        out_of_context.extend(h for h in hits if h.occ not in spans)
                    hits = kept
                out.extend(hits)
        return out

    @staticmethod
    def _term_found(ct: _CTerm, found: list[_Occ], occs: dict[int, list[_Occ]],
                    near_memo: dict[int, list[tuple[_Occ, Term]]] | None = None
                    ) -> list[_Found]:
        """One term's hits among one phrase's occurrences, its context checked."""
        fields = ct.fields
        if not ct.near:
            return [_Found(ct.term, o) for o in found if o.field in fields]
        mine = [o for o in found if o.field in fields]
        return Matcher._context(ct, mine, occs, near_memo) if mine else []

    @staticmethod
    def _with_context(ct: _CTerm, hits: list[_Found],
                      occs: dict[int, list[_Occ]]) -> list[_Found]:
        """Keep the hits of a term with ``near`` that have one of its near terms close enough."""
        return Matcher._context(ct, [h.occ for h in hits], occs)

    @staticmethod
    def _context(ct: _CTerm, mine: list[_Occ], occs: dict[int, list[_Occ]],
                 near_memo: dict[int, list[tuple[_Occ, Term]]] | None = None
                 ) -> list[_Found]:
        """The occurrences ``mine`` of term ``ct`` that have one of its near terms
        close enough, each with the closest (``near_memo``: the near terms'
        occurrences, per item, by near list: terms share their lists)."""
        near = near_memo.get(id(ct.near)) if near_memo is not None else None
        if near is None:
            # Only the near phrases that occurred, in the list's order (a list
            # holds hundreds of phrases, an item a few of them).
            index = ct.near_index
            occurred = index.keys() & occs.keys()
            ranked = sorted([e for pid in occurred for e in index[pid]]) if occurred else ()
            near = [(o, nt.term) for _, pid, nt in ranked for o in occs[pid]
                    if o.field in nt.fields]
            if near_memo is not None:
                near_memo[id(ct.near)] = near
        if not near:
            return []
        term, within = ct.term, ct.within
        if within is None:
            best_occ, best_term = max(near, key=lambda n: n[0].score)
            best = (_Found(best_term, best_occ),)
            return [_Found(term, o, best) for o in mine]
        kept: list[_Found] = []
        for o in mine:
            field_, first, last = o.field, o.first, o.last
            close = [n for n in near if n[0].field == field_
                     and max(0, n[0].first - last, first - n[0].last) <= within]
            if close:
                occ, near_term = min(close, key=lambda n: _distance(o, n[0]))
                kept.append(_Found(term, o, (_Found(near_term, occ),)))
        return kept

    @classmethod
    def _topic_found(cls, listed: list[tuple[int, int, tuple[_CTerm, ...]]],
                     occs: dict[int, list[_Occ]], memo: _ItemMemo) -> list[_Found]:
        """:meth:`_found` of a rule's topic, from its phrases that occurred (``listed``:
        rank, phrase, its terms), each term's hits memoised for the item."""
        if len(listed) > 1:
            listed.sort(key=_RANK)  # the list's order (a rule ranks each phrase once)
        terms = memo.terms
        out: list[_Found] = []
        for _, pid, cterms in listed:
            for ct in cterms:
                key = (id(ct), pid)
                known = terms.get(key)
                if known is None:
                    known = terms[key] = cls._term_found(ct, occs[pid], occs, memo.near)
                out.extend(known)
        return out

    @classmethod
    def _found_once(cls, by_phrase: _Phrases, occs: dict[int, list[_Occ]],
                    memo: _ItemMemo | None) -> list[_Found]:
        """:meth:`_found`, worked out once per item for a term list rules share
        (the list returned is never changed)."""
        if memo is None:
            return cls._found(by_phrase, occs)
        got = memo.found.get(id(by_phrase))
        if got is None:
            got = memo.found[id(by_phrase)] = cls._found(by_phrase, occs, memo=memo.terms,
                                                         near_memo=memo.near)
        return got

    def _family_verdicts(self, family: _Family, occs: dict[int, list[_Occ]],
                         memo: _ItemMemo) -> _Verdicts | None:
        """A family's require groups and exclusions on the item (None: a group found
        nowhere, so no rule of the family hits)."""
        anywhere = [self._found_once(group_terms, occs, memo)
                    for _, group_terms in family.require]
        if not all(anywhere):
            return None
        vetoes = self._found_once(family.exclude, occs, memo) if family.exclude else []
        return _Verdicts(family, anywhere, vetoes)

    def _decide(self, cr: _CRule, occs: dict[int, list[_Occ]], texts: dict[str, str],
                norms: dict[str, Normalized], trace: _Trace) -> Match | None:
        """The rule's verdict on the item's occurrences, as :meth:`match` reaches it,
        for :meth:`explain`: the same steps record what they saw in ``trace`` and go
        on past the first reason to miss, so that every unmet condition is named."""
        anywhere = [self._found(group_terms, occs) for _, group_terms in cr.require]
        trace.topic = [] if trace.dismissed else self._found(cr.topic, occs,
                                                             trace.out_of_context)
        vetoes = self._found(cr.exclude, occs) if cr.exclude else []
        verdict = self._verdict(cr, list(trace.topic), anywhere, vetoes, trace)
        if verdict is None:
            return None
        topic, groups = verdict
        memo = _ItemMemo()
        ready = self._ready(topic, norms, memo)
        for group in groups:
            ready += self._ready(group, norms, memo)
        found = self._evidence(ready, texts, norms, memo)
        return Match(cr.rule.id, grade(cr.rule, found, cr.topic_texts), found)

    def _made(self, cr: _CRule, topic: list[_Found], verdicts: _Verdicts,
              texts: dict[str, str], norms: dict[str, Normalized],
              memo: _ItemMemo) -> tuple[Evidence, ...] | None:
        """The evidence of a hit of ``cr`` whose topic found ``topic`` (None: no hit)."""
        if verdicts.plain:
            kept, groups = topic, verdicts.anywhere
        else:
            verdict = self._verdict(cr, topic, verdicts.anywhere, verdicts.vetoes)
            if verdict is None:
                return None
            kept, groups = verdict
        ready = self._ready(kept, norms, memo)
        if all(map(is_, groups, verdicts.anywhere)):  # every group's entries: shared
            if verdicts.ready is None:
                verdicts.ready = []
                for group in groups:
                    verdicts.ready += self._ready(group, norms, memo)
            ready += verdicts.ready
        else:
            for group in groups:
                ready += self._ready(group, norms, memo)
        return self._evidence(ready, texts, norms, memo)

    @staticmethod
    def _verdict(cr: _CRule, topic: list[_Found], anywhere: list[list[_Found]],
                 vetoes: list[_Found], trace: _Trace | None = None
                 ) -> tuple[list[_Found], list[list[_Found]]] | None:
        """The found entries a hit of ``cr`` gives as evidence, its topic's left by the
        exclusions and each require group's (None: no hit), from its topic found, what
        its require groups found anywhere and its exclusions found. The same for every
        rule of ``cr``'s family (its ``require`` and ``exclude``); a group without
        ``within`` gives its list found anywhere, the very object.
        With a ``trace``, every veto and group is recorded, past the first miss."""
        if not topic and trace is None:
            return None
        for veto in vetoes:
            within = veto.term.within
            if within is None:
                cancelled, topic = topic, []
            else:
                cancelled = [t for t in topic if t.occ.field == veto.occ.field
                             and _distance(t.occ, veto.occ) <= within]
                topic = [t for t in topic if t.occ.field != veto.occ.field
                         or _distance(t.occ, veto.occ) > within]
            if trace is not None:
                trace.vetoes.append((veto, cancelled))
            elif not topic:
                return None
        groups: list[list[_Found]] = []
        met = bool(topic)
        for n, ((within, _), found_anywhere) in enumerate(zip(cr.require, anywhere,
                                                              strict=True)):
            group = found_anywhere
            if within is not None:
                group = [g for g in group
                         if any(t.occ.field == g.occ.field and _distance(t.occ, g.occ) <= within
                                for t in topic)]
            if trace is not None:
                trace.groups.append((cr.rule.require[n], group,
                                     [g for g in found_anywhere if g not in group]))
            if not group:
                if trace is None:
                    return None
                met = False
                continue
            groups.append(group)
        return (topic, groups) if met else None

    @staticmethod
    def _ready(found: list[_Found], norms: dict[str, Normalized],
               memo: _ItemMemo) -> list[_Ready]:
        """Found entries and their context entries, ready for evidence (see
        :data:`_Ready`; :meth:`_evidence` sorts them), each found entry's worked out
        once per item (rules share them: by identity, they live as long as the item)."""
        ready = memo.ready
        out: list[_Ready] = []
        for f in found:
            got = ready.get(id(f))
            if got is None:
                got = ready[id(f)] = ((f.occ.order, f), *((c.occ.order, c) for c in f.context))
            out += got
        return out

    @staticmethod
    def _evidence(ready: list[_Ready], texts: dict[str, str], norms: dict[str, Normalized],
                  memo: _ItemMemo) -> tuple[Evidence, ...]:
        """A hit's evidence from its entries ready, in the order they were found (a
        stable sort lists them field by field, leftmost, longest, best). One entry
        per span: the best-scoring term that found it, listed first, and at most
        :data:`MAX_EVIDENCE` (an article has dozens: spans and Evidence are worked out
        only for the entries looked at, once per item)."""
        ready.sort(key=_ORDER)
        entries, spans, made = memo.entries, memo.spans, memo.evidence
        seen: set[tuple[str, int, int]] = set()
        out: list[Evidence] = []
        for _, f in ready:
            got = entries.get(id(f))
            if got is None:
                occ = f.occ
                at = (occ.field, occ.start, occ.end)
                span = spans.get(at)
                if span is None:
                    start, end = norms[occ.field].span(occ.start, occ.end)
                    span = spans[at] = (occ.field, start, end)
                ev = None
            else:
                span, ev = got
            if span in seen:  # a span listed already (no Evidence is made for it)
                continue
            seen.add(span)
            if ev is None:
                # The same span found by the same term is one Evidence for every rule.
                what = (span, f.term.text, f.occ.score)
                ev = made.get(what)
                if ev is None:
                    ev = made[what] = _evidence_at(f, span[1], span[2], texts)
                entries[id(f)] = (span, ev)
            out.append(ev)
            if len(out) == MAX_EVIDENCE:
                break
        return tuple(out)
