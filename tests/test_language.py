"""The language guess for items whose feed declares none (monitor.language).

Sentences written as the desks' feeds write them: wire copy, Russian and
Kazakh agency news, Telegram posts with their links; then the cases where an
honest guess is "unsure".
"""

from __future__ import annotations

import pytest

from monitor.language import guess_language


@pytest.mark.parametrize(("expected", "title", "summary"), [
    ("en", "Drone attack halts loadings at CPC terminal",
     "The Caspian Pipeline Consortium said loadings at its marine terminal near "
     "Novorossiysk were suspended after a drone struck a single point mooring."),
    ("en", "Kazakhstan bans wheat imports by road for six months", ""),
    ("en", "EU sanctions envoy presses Central Asia on re-exports to Russia",
     "O'Sullivan met officials in Astana and Bishkek to discuss common high priority items."),
    ("ru", "КТК приостановил отгрузку нефти с двух выносных причальных устройств",
     "Каспийский трубопроводный консорциум остановил погрузку танкеров из-за повреждений, "
     "полученных во время шторма 22 марта."),
    ("ru", "Россия запретила вывоз зерна в страны ЕАЭС до 30 июня", ""),
    ("ru", "Казахстан увеличил экспорт нефти", ""),  # no small word: Cyrillic, not Kazakh
    ("kk", "КҚК терминалында дауыл салдарынан екі айлақ құрылғысы зақымданды",
     "Каспий құбыр консорциумы Новороссийск маңындағы терминалда мұнай тиеу шектелгенін "
     "хабарлады."),
    ("kk", "Қазақстан мұнайы Баку – Тбилиси – Джейхан арқылы жөнелтіледі", ""),
    ("kk", "ҚАЗАҚСТАН ҮКІМЕТІ БИДАЙ ЭКСПОРТЫНА ТЫЙЫМ САЛДЫ", ""),  # capitals fold
    ("kk", "Астана мен Баку келісімге қол қойды", ""),
])
def test_each_language_in_real_style_news(expected: str, title: str, summary: str) -> None:
    assert guess_language(title, summary) == expected


def test_a_russian_report_naming_kazakh_places_stays_russian() -> None:
    assert guess_language("Суд оштрафовал ҚазМұнайГаз за разлив нефти на Қашағане") == "ru"
    assert guess_language("Минэнерго РК: «Қазақстан темір жолы» и КТК обсудили график",
                          "Стороны договорились о поставках по железной дороге.") == "ru"


def test_an_english_report_quoting_a_cyrillic_name_stays_english() -> None:
    assert guess_language("Russia's КТК terminal resumes loadings",
                          "The consortium said loadings resumed on Monday.") == "en"


def test_title_and_summary_are_read_together() -> None:
    assert guess_language("КТК") is None
    assert guess_language("КТК", "Консорциум остановил погрузку танкеров в Новороссийске.") == "ru"


def test_a_telegram_post_s_transliterated_link_does_not_outweigh_its_text() -> None:
    post = ("Казахстан ограничил вывоз пшеницы и муки\n\nДо 15 июня можно вывезти не более "
            "1 млн тонн.\n\nПодробнее: https://www.zakon.kz/6010884-kazahstan-ogranichil-vyvoz-"
            "pshenitsy-i-muki-do-15-iyunya-mozhno-vyvezti.html @zakonkz")
    assert guess_language("", post) == "ru"


@pytest.mark.parametrize("text", [
    "", "2024", "CPC", "КТК", "Tengiz FGP", "Kashagan, Tengiz, Karachaganak",  # names alone
    "Каспийский консорциум Caspian Pipeline Consortium",  # two scripts in like measure
    "КТК halts",  # too few words
])
def test_too_little_or_mixed_text_is_unsure(text: str) -> None:
    assert guess_language(text) is None


@pytest.mark.parametrize("text", [
    "Die Bundesregierung will die Sanktionen gegen Russland verschärfen",  # German
    "L'Ouzbékistan va restreindre les exportations de blé vers la Russie",  # French
    "O'zbekiston bug'doy eksporti bo'yicha yangi qaror qabul qildi",  # Uzbek in Latin letters
    "Україна заявила про атаку на морський термінал",  # Ukrainian: ї, not Russian or Kazakh
    "Кыргызстан өкмөтү буудай экспортуна тыюу салды",  # Kyrgyz: ң ө ү but no қ ғ ә ұ і
])
def test_other_languages_are_none_not_a_wrong_guess(text: str) -> None:
    assert guess_language(text) is None
