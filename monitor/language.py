"""Which language an item is written in, when its feed does not say: en, ru or kk.

Pure, standard library only, small: the desks read English, Russian and
Kazakh, and a digest marks another outlet's report with its language
("TASS (ru)"). :func:`guess_language` reads the letters and the commonest
small words of a title and summary and answers ``"en"``, ``"ru"``, ``"kk"``, or
None when it cannot tell: fewer than three words, another language, two
scripts in like measure. A feed's declared language always wins: the parsers
ask for a guess only when neither the feed nor the entry declares one.

* **Script.** Cyrillic or Latin: the one with three quarters of the letters,
  links and handles left out (a Telegram post's transliterated link would
  outweigh its text); else None.
* **Kazakh or Russian.** Kazakh writes nine letters Russian has not
  (``ә ғ қ ң ө ұ ү һ і``), in about a third of its words, and has its own
  small words (``және``, ``мен``, ``бойынша``); Russian has its prepositions and
  conjunctions (``в``, ``на``, ``и``, ``что``). A Russian report naming
  ``Қашаған`` has one such word among many Russian ones: the shares decide.
  Kyrgyz shares ``ң ө ү`` but not ``ә ғ қ ұ і``; Ukrainian, Belarusian, Uzbek,
  Serbian have letters of their own: those are None, not Russian.
* **English.** Latin text whose small words are English (``the``, ``of``,
  ``after``) rather than German, French, Spanish, Turkish or Uzbek ones; Latin
  text without them (a bare list of names) is None.
"""

from __future__ import annotations

import re

__all__ = ["guess_language"]

#: Kazakh's letters that Russian has not, and those of them Kyrgyz has not either.
KAZAKH_LETTERS = frozenset("әғқңөұүһі")
_KAZAKH_NOT_KYRGYZ = frozenset("әғқұі")
# Letters of other Cyrillic languages (Ukrainian, Belarusian, Uzbek, Tajik,
# Tatar, Serbian, Macedonian), none of them Russian's or Kazakh's.
_OTHER_CYRILLIC = frozenset("їєґўђјљњћџѓќѕҳҷҗӣӯ")

_LINK = re.compile(r"(?:https?://|www\.)\S*|\S+@\S+|@\w+")
# Words of each script, in lower-cased text, with inner hyphens and apostrophes
# ("сондай-ақ", "kazakhstan's"); a word of both scripts counts in pieces.
_CYRILLIC = r"[\u0400-\u04ff]"
_LATIN = r"[a-z\u00df-\u00f6\u00f8-\u024f]"  # lower-case ASCII and the Latin supplements
_CYRILLIC_WORD = re.compile(f"{_CYRILLIC}+(?:[-'’]{_CYRILLIC}+)*")
_LATIN_WORD = re.compile(f"{_LATIN}+(?:[-'’]{_LATIN}+)*")
#: How much of an item is read: a lede tells its language as well as the whole.
READ_CHARS = 600


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The commonest small words of each language in news; none is a word of the others.
_KAZAKH_WORDS = _words("""
және мен бен пен бойынша туралы үшін деп бұл осы сол жылы арқылы кейін дейін бар
жоқ емес болды болып болады еді етті етеді берді тиіс ретінде сондай-ақ алайда
бірақ тағы ғана қазір сәйкес қатысты басқа барлық сондықтан келеді
""")
_RUSSIAN_WORDS = _words("""
и в во на с со по не что из за для от о об к ко до как это а но же бы ли при после
также его ее её их был была были было будет будут может уже только или чем так
под над между около более менее этого этом году который которая которые которых
""")
_ENGLISH_WORDS = _words("""
the of and to in a an is are was were for on with at by from as after over its
it this that will has have had says said be been into than but not about against
amid despite their more new up out off
""")
# The like of other languages written in Latin letters.
_OTHER_LATIN_WORDS = _words("""
der die das und ist nicht mit für auf den dem des ein eine von zu
le la les et est une du pour dans sur au aux
el los las y del por con para una es
ve bir ile için bu da
va bilan uchun ham
""")

#: Share of a script's letters in the text, at least, for the text to be in it.
SCRIPT_SHARE = 0.75
#: Share of Cyrillic words that are Kazakh (a Kazakh letter or small word), at
#: least, for Kazakh: Kazakh news has a third and more.
KAZAKH_SHARE = 0.12
#: Fewest words of the text's script for any guess: a name or two says nothing.
MIN_WORDS = 3


def guess_language(*texts: str) -> str | None:
    """``"en"``, ``"ru"`` or ``"kk"``: the language of ``texts`` (a title, a summary...)
    taken together; None when unsure."""
    text = _LINK.sub(" ", " ".join(texts)[:READ_CHARS]).lower()
    cyrillic = _CYRILLIC_WORD.findall(text)
    latin = _LATIN_WORD.findall(text)
    in_cyrillic = sum(map(len, cyrillic))
    in_latin = sum(map(len, latin))
    if in_cyrillic and in_cyrillic >= SCRIPT_SHARE * (in_cyrillic + in_latin):
        return _cyrillic(cyrillic)
    if in_latin and in_latin >= SCRIPT_SHARE * (in_cyrillic + in_latin):
        return _latin(latin)
    return None


def _cyrillic(words: list[str]) -> str | None:
    if len(words) < MIN_WORDS:
        return None
    if any(not _OTHER_CYRILLIC.isdisjoint(w) for w in words):
        return None
    marked = [w for w in words if not KAZAKH_LETTERS.isdisjoint(w)]
    kazakh = len(marked) + sum(1 for w in words if w in _KAZAKH_WORDS)
    russian = sum(1 for w in words if w in _RUSSIAN_WORDS)
    if kazakh >= 2 and kazakh >= KAZAKH_SHARE * len(words) and kazakh > russian:
        if any(not _KAZAKH_NOT_KYRGYZ.isdisjoint(w) for w in marked):
            return "kk"
        return None  # ң ө ү alone: Kyrgyz, not Kazakh
    return "ru" if russian >= kazakh else None


def _latin(words: list[str]) -> str | None:
    if len(words) < MIN_WORDS:
        return None
    english = sum(1 for w in words if w in _ENGLISH_WORDS)
    other = sum(1 for w in words if w in _OTHER_LATIN_WORDS)
    return "en" if english and english > 2 * other else None
