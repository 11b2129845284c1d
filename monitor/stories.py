"""Story clustering: which hits tell the same story, from several outlets or languages.

A pure stage, like ``match``: functions of their inputs, standard library and
rapidfuzz only. :func:`cluster` groups one topic's hits for a digest
(:func:`monitor.digest.build_digest` shows a group as one story); the
thresholds are one commented table, :data:`THRESHOLDS`.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from rapidfuzz import fuzz

from monitor.highlight import clean, safe_url
from monitor.models import Report, StoredHit

__all__ = ["PLACE", "THRESHOLDS", "cluster", "place", "same_story"]

#: How similar two hits must be to be shown as one story. Each row has paired
#: must-merge / must-not-merge cases in tests/test_digest.py (CLUSTER_CASES); a
#: change here updates its comment and a case there. The dev corpus (200 distinct
#: stories, three languages) must stay 200 entries whatever their dates.
THRESHOLDS: Mapping[str, float] = {
    # Never merge hits published further apart than this (hours): a follow-up a
    # week later is another story, however alike its headline.
    "window_hours": 48,
    # Two words are the same when folded they share this many leading
    # characters ("Kazakhstan"/"Kazakh", "exports"/"export")...
    "word_prefix": 5,
    # ...or are this similar (rapidfuzz ratio): typos, transliteration variants.
    "word_ratio": 85,
    # Same script: the shorter title's content words found in the other one.
    # 0.9 lets an outlet suffix or a reworded particle through, and stops
    # "CPC halts loadings" from meeting "CPC resumes loadings" (one word apart).
    "title_overlap": 0.9,
    # A title needs this many content words before overlap means anything.
    "title_min_words": 3,
    # Same script, rewritten headline over the same lede (syndication): summaries
    # this alike (token_sort_ratio, both at least summary_min_chars long), and
    # titles sharing at least this share of words.
    "summary_ratio": 88,
    "summary_min_chars": 80,
    "summary_title_overlap": 0.3,
    # Across scripts (a Russian and an English version) there are no common
    # words, only names and numbers: the titles must share this many...
    "cross_title_names": 2,
    # ...title and summary together this many...
    "cross_names": 3,
    # ...and make up this share of the smaller side's names and numbers.
    "cross_share": 0.6,
}

# Vetoes, whatever the scores: titles with different numbers (16.5% vs 16.75%,
# "81% of the vote" vs "87%") and titles that each name someone or something the
# other item never mentions (the UK vs the US sanctioning the same bank).

_STOPWORDS = frozenset([
    "a", "an", "the", "of", "to", "in", "on", "at", "for", "by", "with", "from", "as",
    "and", "or", "but", "is", "are", "was", "were", "be", "been", "its", "it", "this",
    "that", "these", "those", "after", "before", "over", "under", "into", "onto", "via",
    "amid", "than", "then", "has", "have", "had", "will", "would", "could", "can", "may",
    "might", "not", "no", "new", "says", "said", "say", "report", "reports", "according",
    "в", "во", "на", "и", "по", "с", "со", "из", "за", "о", "об", "от", "до", "для", "к",
    "у", "не", "что", "как", "после", "при", "под", "над", "через", "а", "но", "это", "его",
    "её", "их", "также", "уже", "ещё", "еще"
])

_CYRILLIC = str.maketrans({
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh",
    "з": "z", "и": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "h", "ц": "ts",
    "ч": "ch", "ш": "sh", "щ": "sch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu",
    "я": "ya",
    # Kazakh and Ukrainian letters
    "ә": "a", "ғ": "g", "қ": "k", "ң": "n", "ө": "o", "ұ": "u", "ү": "u", "һ": "h",
    "і": "i", "ї": "i", "є": "e", "ґ": "g",
})

_NUMBER = r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?![\d.,])|\d+(?:[.,]\d+)*"
_TOKEN = re.compile(rf"({_NUMBER})|([^\W\d_]+(?:['’][^\W\d_]+)?)")


def _number(raw: str) -> str:
    s = re.sub(r"[ \u00a0\u202f]", "", raw)
    # "390,000" groups thousands; "1,2" (Russian) is a decimal comma.
    s = re.sub(r",(?=\d{3}(?:\D|$))", "", s).replace(",", ".")
    if "." in s:
        s = s.rstrip("0").rstrip(".") or "0"
    return "#" + (s.lstrip("0") or "0")


def _fold(word: str) -> str:
    """Lower-case, transliterated to Latin, spelling variants of names folded."""
    w = unicodedata.normalize("NFKD", word.lower().translate(_CYRILLIC))
    w = "".join(c for c in w if not unicodedata.combining(c))
    w = w.replace("kh", "h").replace("ph", "f").replace("w", "v").replace("q", "k")
    w = re.sub(r"c(?!h)", "k", w).replace("x", "ks").replace("y", "i")
    return re.sub(r"(.)\1", r"\1", w)


def _tokens(text: str) -> list[tuple[str, str]]:
    """(as written, folded) for each word or number of ``text``; numbers fold to ``#n``."""
    out = []
    for m in _TOKEN.finditer(text):
        if m.group(1):
            out.append((m.group(1), _number(m.group(1))))
        else:
            raw = re.sub(r"['’][sS]$", "", m.group(2))  # Kazakhstan's -> Kazakhstan
            out.append((raw, _fold(raw)))
    return out


def _is_name(raw: str) -> bool:
    """Capitalised words and acronyms (a headline's first word too: usually a name)."""
    return len(raw) >= 2 and raw[0].isupper() and raw.lower() not in _STOPWORDS


def _acronyms(tokens: Iterable[tuple[str, str]]) -> frozenset[str]:
    return frozenset(raw for raw, _ in tokens if len(raw) >= 2 and raw.isupper())


@dataclass(frozen=True, slots=True)
class _Signature:
    """What clustering compares, computed once per hit."""

    script: str  # "latin" or "cyrillic": the title's majority
    title_words: tuple[str, ...]  # content words and numbers, folded
    title_numbers: frozenset[str]
    title_names: tuple[str, ...]  # capitalised words of the title (not short acronyms)
    title_acronyms: frozenset[str]  # as written: UK, US, CPC
    acronyms: frozenset[str]  # of title and summary
    all_words: frozenset[str]  # every folded word of title and summary
    names: tuple[str, ...]  # names and numbers (2+ digits) of title and summary, folded
    summary: str  # folded words of the summary
    title_keys: frozenset[str]  # 3-letter prefixes of title_words: a cheap first filter
    name_keys: frozenset[str]  # the same for title names and numbers
    link: str | None
    published: datetime


# Wire services' tags: "UPDATE 2-", "EXCLUSIVE-", "RPT-", "WRAPUP 1-".
_WIRE_TAG = re.compile(r"^(?:(?:UPDATE|WRAPUP|CORRECTED|REFILE|RPT|EXCLUSIVE|BREAKING|"
                       r"ANALYSIS|FACTBOX|INSIGHT)(?: \d+)?\s*[-:]\s*)+")


# An outlet's name after the headline: "... - Reuters", "... | Kursiv" (up to three
# capitalised words, so "Oil rises - analysts" keeps its last word).
_OUTLET_SUFFIX = re.compile(r"\s+[-|–—]\s+(?:[A-ZА-ЯЁ][\w.&'’]*\s?){1,3}$")


def _signature(hit: StoredHit) -> _Signature:
    title = _OUTLET_SUFFIX.sub("", _WIRE_TAG.sub("", clean(hit.title)))
    letters = [c for c in title if c.isalpha()]
    cyrillic = sum(1 for c in letters if "\u0400" <= c <= "\u04ff")
    t = _tokens(title)
    s = _tokens(clean(hit.summary))
    names = [f for raw, f in t + s
             if (len(f) > 2 if f.startswith("#") else _is_name(raw))]
    title_words = tuple(f for raw, f in t if f.startswith("#")
                        or (raw.lower() not in _STOPWORDS and len(f) >= 2))
    title_names = tuple(f for raw, f in t if not f.startswith("#") and _is_name(raw)
                        and not (raw.isupper() and len(raw) <= 4))
    title_numbers = frozenset(f for _, f in t if f.startswith("#"))
    return _Signature(
        script="cyrillic" if cyrillic * 2 > len(letters) else "latin",
        title_words=title_words,
        title_numbers=title_numbers,
        title_names=title_names,
        title_acronyms=_acronyms(t),
        acronyms=_acronyms(t + s),
        all_words=frozenset(f for _, f in t + s),
        names=tuple(dict.fromkeys(names)),
        summary=" ".join(f for _, f in s),
        title_keys=frozenset(w[:3] for w in title_words),
        name_keys=frozenset(w[:3] for w in (*title_names, *title_numbers)),
        link=safe_url(hit.link),
        published=hit.published,
    )


@functools.lru_cache(maxsize=65536)
def _same_word(a: str, b: str) -> bool:
    if a == b:
        return True
    if a.startswith("#") or b.startswith("#"):
        return False  # numbers only ever equal
    shorter = min(len(a), len(b))
    prefix = int(THRESHOLDS["word_prefix"])
    if shorter >= prefix:
        common = 0
        for x, y in zip(a, b, strict=False):
            if x != y:
                break
            common += 1
        if common >= prefix and common >= 0.6 * shorter:
            return True
        return fuzz.ratio(a, b, score_cutoff=THRESHOLDS["word_ratio"]) > 0
    return False


def _matched(a: Sequence[str], b: Sequence[str]) -> int:
    """How many words of ``a`` have a partner in ``b`` (each partner used once)."""
    free = list(b)
    fuzzy = []
    n = 0
    for w in a:  # exact partners first: cheap, and they must not be taken by a fuzzy one
        if w in free:
            free.remove(w)
            n += 1
        else:
            fuzzy.append(w)
    for w in fuzzy:
        for i, v in enumerate(free):
            if _same_word(w, v):
                n += 1
                del free[i]
                break
    return n


def _unexplained_name(a: _Signature, b: _Signature) -> bool:
    """Does ``a``'s title name someone or something ``b`` never mentions?"""
    # Short acronyms are compared as written: "US" must not meet the word "us".
    if any(len(x) <= 4 and x not in b.acronyms for x in a.title_acronyms):
        return True
    return any(not any(_same_word(name, w) for w in b.all_words) for name in a.title_names)


def _overlap(a: Sequence[str], b: Sequence[str], *, count: bool = False) -> float:
    """The share of the shorter list's words found in the other (or their number)."""
    if len(a) > len(b):
        a, b = b, a
    if count:
        return _matched(a, b)
    return _matched(a, b) / len(a) if a else 0.0


def _same(a: _Signature, b: _Signature) -> bool:
    # Cheapest tests first: a digest may compare a few hundred hits pairwise.
    if a.link is not None and a.link == b.link:
        return True  # one article reached through two feeds
    if abs(a.published - b.published) > timedelta(hours=THRESHOLDS["window_hours"]):
        return False
    if a.title_numbers and b.title_numbers and a.title_numbers != b.title_numbers:
        return False
    if a.script == b.script:
        # Words that match share their first three letters, nearly always: an upper
        # bound on the overlap that costs one set intersection.
        shorter = min(len(a.title_words), len(b.title_words))
        if len(a.title_keys & b.title_keys) < THRESHOLDS["summary_title_overlap"] * shorter:
            return False
        overlap = _overlap(a.title_words, b.title_words)
        if overlap < THRESHOLDS["summary_title_overlap"]:
            return False
        if _unexplained_name(a, b) and _unexplained_name(b, a):
            return False
        if shorter >= THRESHOLDS["title_min_words"] and overlap >= THRESHOLDS["title_overlap"]:
            return True
        min_chars = THRESHOLDS["summary_min_chars"]
        return (len(a.summary) >= min_chars and len(b.summary) >= min_chars
                and fuzz.token_sort_ratio(a.summary, b.summary) >= THRESHOLDS["summary_ratio"])
    # Across scripts: the titles must share names (country names alone are too
    # common in one topic), then title and summary together.
    if len(a.name_keys & b.name_keys) < THRESHOLDS["cross_title_names"]:
        return False
    if _overlap(a.title_names + tuple(a.title_numbers), b.title_names + tuple(b.title_numbers),
                count=True) < THRESHOLDS["cross_title_names"]:
        return False
    small, big = (a.names, b.names) if len(a.names) <= len(b.names) else (b.names, a.names)
    shared = _matched(small, big)
    return (shared >= THRESHOLDS["cross_names"]
            and shared / len(small) >= THRESHOLDS["cross_share"])


def same_story(a: StoredHit, b: StoredHit) -> bool:
    """Are these two hits the same story (from two outlets, or two languages)?"""
    return _same(_signature(a), _signature(b))


def cluster(hits: Sequence[StoredHit]) -> list[list[StoredHit]]:
    """Group hits that tell the same story; newest first, each hit in one group.

    A hit joins the first group holding a hit it matches (:func:`same_story`)
    and whose title numbers do not contradict any member, so two different
    stories cannot be chained together through a vague third.
    """
    ordered = sorted(hits, key=lambda h: (h.published, h.id), reverse=True)
    groups: list[list[tuple[StoredHit, _Signature]]] = []
    for h in ordered:
        sig = _signature(h)
        for group in groups:
            if any(s.title_numbers and sig.title_numbers and s.title_numbers
                   != sig.title_numbers for _, s in group):
                continue
            if any(_same(sig, s) for _, s in group):
                group.append((h, sig))
                break
        else:
            groups.append([(h, sig)])
    return [[h for h, _ in g] for g in groups]


# -- story placement: which stored story a new report joins -----------------------------
#
# Across languages titles share no words, only what means the same: names and
# places transliterated, numbers, months, and the few dozen words of the watch
# topics' vocabulary, each mapped to one concept key below (КТК = CPC = КҚК,
# ВПУ = SPM = mooring, шторм = storm = дауыл). A report is its set of keys; two
# reports are alike by the IDF-weighted cosine of their keys, the weights taken
# from the stories held for comparison (a key in every report, like "oil" this
# week, counts for little). Words of the topic vocabulary are matched by their
# folded prefix ("$": the whole word only).

#: Placement's thresholds; paired cases in tests/test_stories.py.
PLACE: Mapping[str, float] = {
    # A report never joins a story whose newest report is further away than this.
    "window_hours": 72,
    # The similarity (0-1) a report needs to join a story: the mean over its
    # reports, or 0.8 of the best single one, whichever is higher.
    "join": 0.3,
    "best_factor": 0.8,
    # Titles naming different actors (UK / US) or the texts different months:
    # the similarity is multiplied by this.
    "conflict": 0.5,
}

_CONCEPTS: Mapping[str, str] = {
 "CPC": "cpc ktk кқк ктк konsortsium consortium консорциум kpk",
 "BTC": "btc бтд btd бтж tbilisi тбилиси ceyhan джейхан jeyhan dzheikhan",
 "SPM": "spm mooring moorings buoy впу причал выносн айлақ single-point",
 "OIL": "oil crude нефт мұнай",
 "PIPE": "pipeline трубопровод труба трубу құбыр",
 "EXPORT": "export экспорт вывоз shipment отгруз loading loadings погруз тиеп жөнелт shipped ship",
 "IMPORT": "import ввоз әкел",
 "HALT": "suspend halt stop shut offline приостанов останов тоқтат curtail пауз",
 "RESUME": "resum restart возобнов",
 "STORM": "storm шторм дауыл",
 "DAMAGE": "damag поврежд зақым авари",
 "DRONE": "drone uav беспилот дрон бпла",
 "ATTACK": "attack strike атак удар шабуыл",
 "COURT": "court суд$ суда$ судом$ суде$ сот$ соты$ соты",
 "FINE": "fine$ fined штраф айыппұл",
 "BAN": "ban$ bans$ banned prohibit embargo запрет тыйым",
 "QUOTA": "quota квот limit restrict огранич шектеу",
 "EXTEND": "extend продл ұзарт",
 "WHEAT": "wheat пшениц бидай",
 "FLOUR": "flour мук ұн$",
 "GRAIN": "grain зерн астық",
 "SANCTION": "sanction санкц",
 "TANKER": "tanker танкер",
 "TERMINAL": "terminal терминал",
 "STATION": "station pumping нпс станц айдау",
 "MINES": "mine$ mines munition боеприпас мины$ мин$",
 "CRACK": "crack трещин жарық",
 "RECORD": "record рекорд",
 "OUTPUT": "output production добыч өндір",
 "ROAD": "road truck автотранспорт автомобил автокөлік",
 "#6": "six шест алты полгод",
 "#2": "two два$ двух екі",
 "#3": "three трех үш$",
 "#30": "thirty тридцат",
 "TRACK": "track отслежив қадағала накладн",
 "REEXPORT": "re-export reexport реэкспорт",
 "ENVOY": "envoy спецпредстав өкіл",
 "KZ": "kazakh казах қазақ рк$",
 "RU": "russia росси рф$ ресей",
 "KG": "kyrgyz кыргыз киргиз қырғыз",
 "UK": "uk$ britain british британ ұлыбритан",
 "US": "us$ usa сша ақш washington",
 "EU": "eu$ ес$ евросоюз ео$ european",
 "CN": "china chinese китай қытай",
 "TENGIZ": "tengiz тенгиз теңіз",
 "CHEVRON": "chevron шеврон",
 "KMG": "kmg кмг kazmunaygas казмунайгаз қазмұнайгаз",
 "SOCAR": "socar сокар",
 "NOVO": "novoross новоросс",
 "AKTAU": "aktau актау ақтау",
 "BAKU": "baku баку",
 "TOKAYEV": "tokayev токаев тоқаев",
 "PRESIDENT": "president президент",
 "EAEU": "eaeu eeu еаэс еаэо eurasian",
 "BLACKSEA": "black черн қара",
 "CASPIAN": "caspian каспий",
 "TRANSCASP": "trans-caspian транскаспий transcaspian",
 "OPEC": "opec опек",
 "FIRST": "first перв алғашқы",
 "BATCH": "batch cargo партия",
 "TRANSIT": "transit транзит",
 "MONTH": "month месяц ай$",
 "TON": "ton$ tons$ tonnes тонн",
 "MLN": "mln million млн миллион",
 "THOUSAND": "thousand тыс$ тысяч мың",
 "BARREL": "barrel баррел",
 "M01": "january январ қаңтар", "M02": "february феврал ақпан", "M03": "march$ марта$ март$ наурыз",
 "M04": "april апрел сәуір", "M05": "may$ мая$ май$ мамыр", "M06": "june июн маусым",
 "M07": "july июл шілде", "M08": "august август тамыз", "M09": "september сентябр қыркүйек",
 "M10": "october октябр қазан$", "M11": "november ноябр қараша", "M12": "december декабр желтоқсан",
}

_CONFLICTS = (
    ("title", frozenset({"UK", "US", "EU", "CN", "KG"})),
    ("all", frozenset(f"M{m:02d}" for m in range(1, 13))),
)


def _lexicon() -> tuple[dict[str, str], dict[str, str]]:
    exact: dict[str, str] = {}
    prefix: dict[str, str] = {}
    for key, words in _CONCEPTS.items():
        for w in words.split():
            folded = "".join(_fold(p) for p in w.rstrip("$").split("-"))
            (exact if w.endswith("$") else prefix)[folded] = key
    return exact, prefix


_EXACT, _PREFIX = _lexicon()


@functools.lru_cache(maxsize=65536)
def _concept(folded: str) -> str | None:
    if folded in _EXACT:
        return _EXACT[folded]
    for n in range(min(len(folded), 12), 2, -1):
        key = _PREFIX.get(folded[:n])
        if key:
            return key
    return None


def _keys(text: str) -> frozenset[str]:
    """A text's comparable keys: concepts, numbers, and names (capitalised words)."""
    out: set[str] = set()
    for raw, f in _tokens(text):
        if f.startswith("#"):
            if len(f) > 2:
                out.add(f.rstrip("0").replace(".", ""))
            continue
        if raw.lower() in _STOPWORDS:
            continue
        key = _concept(f)
        if key:
            out.add(key)
        elif len(f) >= 3 and raw[0].isupper() and len(raw) > 3:
            out.add(f[:6])
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class _Keys:
    title: frozenset[str]
    all: frozenset[str]
    link: str | None
    published: datetime


@functools.lru_cache(maxsize=16384)
def _report_keys(report: Report) -> _Keys:
    title = _OUTLET_SUFFIX.sub("", _WIRE_TAG.sub("", clean(report.title)))
    t = _keys(title)
    return _Keys(title=t, all=t | _keys(clean(report.summary)), link=safe_url(report.link),
                 published=report.published)


def _similarity(a: _Keys, b: _Keys, idf: Mapping[str, float], default: float) -> float:
    if a.link is not None and a.link == b.link:
        return 1.0
    wa = sum(idf.get(k, default) for k in a.all)
    wb = sum(idf.get(k, default) for k in b.all)
    if not wa or not wb:
        return 0.0
    s = sum(idf.get(k, default) for k in a.all & b.all) / math.sqrt(wa * wb)
    for where, group in _CONFLICTS:
        x = (a.title if where == "title" else a.all) & group
        y = (b.title if where == "title" else b.all) & group
        if x and y and not x & y:
            s *= PLACE["conflict"]
    return s


def place(new: Sequence[Report], placed: Sequence[Report]) -> list[int]:
    """The story of each new report, in order: a placed report's ``story``, or the
    story a new report starts (its own ``item_id``). Later new reports may join
    the stories earlier ones started."""
    pool = [(r, _report_keys(r)) for r in placed if r.story is not None]
    fresh = [_report_keys(r) for r in new]
    df: Counter[str] = Counter()
    for _, k in pool:
        df.update(k.all)
    for k in fresh:
        df.update(k.all)
    n = len(pool) + len(fresh)
    idf = {k: math.log((n + 1) / (v + 0.5)) for k, v in df.items()}
    default = math.log((n + 1) / 0.5)
    by_story: dict[int, list[_Keys]] = {}
    for r, k in pool:
        by_story.setdefault(r.story, []).append(k)  # type: ignore[arg-type]
    window = timedelta(hours=PLACE["window_hours"])
    out: list[int] = []
    for r, k in zip(new, fresh, strict=True):
        best, best_score = None, 0.0
        for story, members in by_story.items():
            if abs(k.published - max(m.published for m in members)) > window and not any(
                    k.link is not None and k.link == m.link for m in members):
                continue
            sims = [_similarity(k, m, idf, default) for m in members]
            score = max(sum(sims) / len(sims), PLACE["best_factor"] * max(sims))
            if score > best_score:
                best, best_score = story, score
        story = best if best is not None and best_score >= PLACE["join"] else r.item_id
        by_story.setdefault(story, []).append(k)
        out.append(story)
    return out
