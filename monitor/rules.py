"""Watch rules: YAML files -> validated, frozen :class:`Rule` values.

This module owns the rule file format (taught by example in ``rules/README.md``)
and its validation. One file holds one rule::

    id: cpc-disruption            # required, lower-case letters, digits, '-'
    title: ...                    # required
    description: ...              # required
    severity: high                # required: low | medium | high | critical
    fields: [title, summary, content]   # optional, default all three
    fuzzy: 85                     # optional word similarity 50-100, default 85
    terms: [...]                  # required: the topic's names, any one of them
    require: [{name, within, terms}, ...]   # optional: groups that must also match
    exclude: [...]                # optional: terms that veto the hit

A term is a string or a mapping ``{term, fuzzy, fields, near, within}``.

Every problem in every file is collected and reported at once as a
:class:`monitor.errors.Problem` (``path:line:col: message``) inside one
:class:`monitor.errors.RuleFileError`. Files are read with ``yaml.compose``
and the safe loader, so every node keeps its line and column and duplicate
keys are seen before PyYAML would silently keep the last one. PyYAML is
imported lazily: the matcher imports this module for its types only.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.errors import Problem, RuleFileError
from monitor.models import Severity
from monitor.normalize import term_words

if TYPE_CHECKING:
    import yaml

__all__ = [
    "DEFAULT_FUZZY",
    "FIELDS",
    "Requirement",
    "Rule",
    "RuleSet",
    "Term",
    "load_rule_file",
    "load_rules",
]

#: The fields of an item a rule can look at, in the order evidence lists them.
#: ``content`` is an article's main text, fetched where a feed has ``full_text``.
FIELDS: tuple[str, ...] = ("title", "summary", "content")
#: How similar (0-100) a misspelt word must be to a term's word, unless a rule says otherwise.
DEFAULT_FUZZY = 85
#: Below this, fuzzy matching accepts unrelated words: refuse it.
MIN_FUZZY = 50
#: The largest ``within`` distance, in words: beyond this, leave ``within`` out.
MAX_WITHIN = 200

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_RULE_KEYS = ("id", "title", "description", "severity", "fields", "fuzzy", "terms",
              "require", "exclude")
_TERM_KEYS = ("term", "fuzzy", "fields", "near", "within")
_REQUIRE_KEYS = ("name", "terms", "within")
_SEVERITIES = tuple(str(s) for s in Severity)


@dataclass(frozen=True, slots=True)
class Term:
    """One term of a rule, with its options resolved against the rule's defaults.

    ``near``: when given, the term counts only where one of these terms also
    occurs: within ``within`` words in the same field, or anywhere in the item
    when ``within`` is None. In ``Rule.exclude``, ``within`` instead bounds the
    distance to the rule's topic term that the exclusion cancels.
    """

    text: str
    fuzzy: float
    fields: tuple[str, ...]
    near: tuple[Term, ...] = ()
    within: int | None = None


@dataclass(frozen=True, slots=True)
class Requirement:
    """A group of terms of which one must also occur (within ``within`` words of a topic term)."""

    name: str
    terms: tuple[Term, ...]
    within: int | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One watch rule, as its file says, with defaults filled in.

    ``version`` is a short SHA-256 of the file's bytes, stored with every hit,
    so that "why did we alert?" has an answer after the rule has changed.
    """

    id: str
    title: str
    description: str
    severity: Severity
    path: str
    version: str
    fields: tuple[str, ...]
    fuzzy: float
    terms: tuple[Term, ...]
    require: tuple[Requirement, ...] = ()
    exclude: tuple[Term, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules in force, in a stable order (by file name)."""

    rules: tuple[Rule, ...]
    _by_id: dict[str, Rule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id: dict[str, Rule] = {}
        for rule in self.rules:
            if rule.id in by_id:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            by_id[rule.id] = rule
        object.__setattr__(self, "_by_id", by_id)

    def get(self, rule_id: str) -> Rule | None:
        return self._by_id.get(rule_id)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)


def shipped_rules_dir() -> Path:
    """The rules that ship with the package.

    In a checkout (an editable install), the repository's ``rules/``, their one
    source; installed from a wheel, the copy the build put in the package,
    ``monitor/shipped_rules`` (setup.py). A checkout is a ``rules/`` beside a
    ``pyproject.toml``, so a stray ``site-packages/rules`` is never taken.
    """
    here = Path(__file__).resolve().parent
    checkout = here.parent / "rules"
    if checkout.is_dir() and (here.parent / "pyproject.toml").is_file():
        return checkout
    return here / "shipped_rules"


def is_rule_file(name: str) -> bool:
    """``*.yaml`` / ``*.yml``, but not a hidden file or an editor's leftover:
    ``.btc.yaml``, Emacs' ``.#btc.yaml`` and ``#btc.yaml#``, ``btc.yaml~``,
    Vim's ``.btc.yaml.swp`` (the suffix alone rules out the last three)."""
    return name.endswith((".yaml", ".yml")) and not name.startswith((".", "#", "~"))


def rule_files(directory: Path) -> list[Path]:
    """The rule files of ``directory`` (:func:`is_rule_file`), sorted by name."""
    return sorted(p for p in Path(directory).iterdir() if is_rule_file(p.name) and p.is_file())


def load_rules(directory: Path) -> RuleSet:
    """Load every rule file of ``directory`` (:func:`rule_files`), sorted by name.

    Raises :class:`RuleFileError` with every problem of every file, and one
    more for each rule id used by two files.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise RuleFileError([Problem(str(directory), None, None, "no such rules folder")])
    paths = rule_files(directory)
    problems: list[Problem] = []
    rules: list[Rule] = []
    first_seen: dict[str, _Loaded] = {}  # rule id -> the file that declared it first
    for path in paths:
        loaded = _load(path)
        problems.extend(loaded.problems)
        rule = loaded.rule
        if rule is None:
            continue
        first = first_seen.get(rule.id)
        if first is not None:
            problems.append(Problem(rule.path, loaded.id_line, loaded.id_column,
                                    f"id: duplicate rule id {rule.id!r} "
                                    f"(already used in {first.path}:{first.id_line})"))
            continue
        first_seen[rule.id] = loaded
        rules.append(rule)
    if problems:
        raise RuleFileError(problems)
    return RuleSet(tuple(rules))


def load_rule_file(path: Path) -> Rule:
    """Load and validate one rule file (an edited rule to backtest, say)."""
    loaded = _load(Path(path))
    if loaded.rule is None:
        raise RuleFileError(loaded.problems)
    return loaded.rule


# -- reading ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Loaded:
    """One file read: its rule (None when it has problems), its problems, where its id is."""

    path: str
    rule: Rule | None
    problems: list[Problem]
    id_line: int | None = None
    id_column: int | None = None


def _load(path: Path) -> _Loaded:
    import yaml

    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        return _Loaded(name, None, [Problem(name, None, None, f"cannot read: {e.strerror}")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        return _Loaded(name, None, [Problem(name, line, None, "is not UTF-8 text")])
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as e:
        return _Loaded(name, None, [_yaml_problem(name, e)])
    except yaml.YAMLError as e:  # no position known
        return _Loaded(name, None, [Problem(name, None, None, f"invalid YAML: {e}")])
    checker = _Checker(name, hashlib.sha256(data).hexdigest()[:12])
    rule = checker.rule(root)
    where = checker.id_node.start_mark if checker.id_node is not None else None
    return _Loaded(name, rule if not checker.problems else None, checker.problems,
                   where.line + 1 if where else None, where.column + 1 if where else None)


def _compose(text: str) -> yaml.Node | None:
    """The YAML node tree, through libyaml when PyYAML has it (the four shipped
    rules compose in ~2 ms instead of ~30: start-up of every poll); a document
    libyaml rejects is composed again by the pure loader, whose error messages
    (and marks) the rule-file tests pin down."""
    import yaml

    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.compose(text, Loader=fast)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _yaml_problem(name: str, e: yaml.MarkedYAMLError) -> Problem:
    """A PyYAML syntax error -> one Problem at the place it names."""
    mark = e.problem_mark or e.context_mark
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    problem = str(e.problem or e.context or "syntax error")
    if "'\\t'" in problem:
        return Problem(name, line, column,
                       "invalid YAML: a tab character; indent with spaces only")
    if "quoted scalar" in str(e.context) and "end of stream" in problem and e.context_mark:
        # The end of the file is no help: point at the quote that was left open.
        return Problem(name, e.context_mark.line + 1, e.context_mark.column + 1,
                       "invalid YAML: this quote is never closed")
    message = f"invalid YAML: {problem}"
    if e.context and e.context_mark is not None and e.problem:
        message += f" ({e.context} at line {e.context_mark.line + 1})"
    return Problem(name, line, column, message)


class _Checker:
    """Walks one composed YAML document, collecting problems and building the Rule."""

    def __init__(self, path: str, version: str) -> None:
        self.path = path
        self.version = version
        self.problems: list[Problem] = []
        self.id_node: yaml.Node | None = None
        self.near_lists: dict[tuple[int, float, tuple[str, ...]],
                              tuple[yaml.Node, tuple[Term, ...]]] = {}
        self.near_keys: dict[int, tuple[tuple[Term, ...], object]] = {}

    def at(self, node: yaml.Node, message: str) -> Problem:
        mark = node.start_mark
        return Problem(self.path, mark.line + 1, mark.column + 1, message)

    def problem(self, node: yaml.Node, message: str) -> None:
        self.problems.append(self.at(node, message))

    # -- generic node checks ------------------------------------------------

    def mapping(self, node: yaml.Node, where: str, allowed: tuple[str, ...],
                required: tuple[str, ...]) -> dict[str, yaml.Node] | None:
        """A mapping's keys -> value nodes; unknown, duplicate and missing keys reported."""
        import yaml

        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{where + ': ' if where else ''}expected a mapping of keys "
                               f"({', '.join(allowed)}), found {_kind(node)}")
            return None
        out: dict[str, yaml.Node] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            prefix = f"{where}: " if where else ""
            if not isinstance(key, str) or key_node.tag == "tag:yaml.org,2002:null":
                self.problem(key_node, f"{prefix}keys must be plain words")
                continue
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.problem(key_node, f"{prefix}unknown key {key!r}{hint}")
                continue
            if key in out:
                self.problem(key_node, f"{prefix}duplicate key {key!r} "
                                       f"(first at line {first_line[key]})")
                continue
            out[key] = value_node
            first_line[key] = key_node.start_mark.line + 1
        for key in required:
            if key not in out:
                self.problem(node, f"{where + ': ' if where else ''}missing required key {key!r}")
        return out

    def text(self, node: yaml.Node, where: str, *, allow_empty: bool = False) -> str | None:
        import yaml

        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            self.problem(node, f"{where}: expected text, found {_kind(node)}")
            return None
        value = str(node.value).strip()
        if not value and not allow_empty:
            self.problem(node, f"{where}: must not be empty")
            return None
        return value

    def number(self, node: yaml.Node, where: str, low: float, high: float,
               *, whole: bool) -> float | None:
        import yaml

        tags = ("tag:yaml.org,2002:int",) if whole else (
            "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
        kind = "a whole number" if whole else "a number"
        if not isinstance(node, yaml.ScalarNode) or node.tag not in tags:
            self.problem(node, f"{where}: expected {kind} from {low:g} to {high:g}, "
                               f"found {_kind(node)}")
            return None
        value = yaml.SafeLoader("").construct_object(node)
        if not low <= value <= high:
            self.problem(node, f"{where}: {node.value} is out of range "
                               f"(expected {kind} from {low:g} to {high:g})")
            return None
        return float(value)

    def sequence(self, node: yaml.Node, where: str) -> list[yaml.Node] | None:
        import yaml

        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, f"{where}: expected a list, found {_kind(node)}")
            return None
        if not node.value:
            self.problem(node, f"{where}: must not be empty")
            return None
        return list(node.value)

    # -- the rule -----------------------------------------------------------

    def rule(self, root: yaml.Node | None) -> Rule | None:
        if root is None:
            self.problems.append(Problem(self.path, None, None,
                                         "empty file (a rule needs id, title, description, "
                                         "severity and terms)"))
            return None
        keys = self.mapping(root, "", _RULE_KEYS,
                            ("id", "title", "description", "severity", "terms"))
        if keys is None:
            return None
        rule_id = title = description = None
        severity: Severity | None = None
        if "id" in keys:
            self.id_node = keys["id"]
            rule_id = self.text(keys["id"], "id")
            if rule_id is not None and not _ID_RE.match(rule_id):
                self.problem(keys["id"], f"id: {rule_id!r} must be lower-case letters, digits "
                                         "and '-', starting with a letter or digit")
                rule_id = None
        if "title" in keys:
            title = self.text(keys["title"], "title")
        if "description" in keys:
            description = self.text(keys["description"], "description")
        if "severity" in keys:
            severity = self.severity(keys["severity"])
        fields = FIELDS
        if "fields" in keys:
            fields = self.fields(keys["fields"], "fields") or FIELDS
        fuzzy: float = DEFAULT_FUZZY
        if "fuzzy" in keys:
            fuzzy = self.number(keys["fuzzy"], "fuzzy", MIN_FUZZY, 100, whole=False) or fuzzy
        terms = self.terms(keys["terms"], "terms", fuzzy, fields, context=True) \
            if "terms" in keys else None
        require: tuple[Requirement, ...] = ()
        if "require" in keys:
            require = self.requirements(keys["require"], fuzzy, fields)
        exclude: tuple[Term, ...] = ()
        if "exclude" in keys:
            exclude = self.terms(keys["exclude"], "exclude", fuzzy, fields,
                                 context=False, within_alone=True) or ()
        if (rule_id is None or title is None or description is None or severity is None
                or not terms or self.problems):
            return None
        return Rule(id=rule_id, title=title, description=description, severity=severity,
                    path=self.path, version=self.version, fields=fields, fuzzy=fuzzy,
                    terms=terms, require=require, exclude=exclude)

    def severity(self, node: yaml.Node) -> Severity | None:
        word = self.text(node, "severity")
        if word is None:
            return None
        if word.lower() not in _SEVERITIES:
            close = difflib.get_close_matches(word.lower(), _SEVERITIES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self.problem(node, f"severity: unknown severity {word!r} ({hint}expected one of "
                               f"{', '.join(_SEVERITIES)})")
            return None
        return Severity.parse(word)

    def fields(self, node: yaml.Node, where: str) -> tuple[str, ...] | None:
        items = self.sequence(node, where)
        if items is None:
            return None
        out: list[str] = []
        for i, item in enumerate(items):
            name = self.text(item, f"{where}[{i}]")
            if name is None:
                continue
            if name not in FIELDS:
                close = difflib.get_close_matches(name, FIELDS, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.problem(item, f"{where}[{i}]: unknown field {name!r} ({hint}expected "
                                   f"{', '.join(FIELDS[:-1])} or {FIELDS[-1]})")
                continue
            if name not in out:
                out.append(name)
        return tuple(f for f in FIELDS if f in out) if out else None

    def within(self, node: yaml.Node, where: str) -> int | None:
        value = self.number(node, where, 1, MAX_WITHIN, whole=True)
        return None if value is None else int(value)

    def terms(self, node: yaml.Node, where: str, fuzzy: float, fields: tuple[str, ...],
              *, context: bool, within_alone: bool = False) -> tuple[Term, ...] | None:
        """A list of terms; ``context``: entries may carry ``near``/``within``."""
        items = self.sequence(node, where)
        if items is None:
            return None
        out: list[Term] = []
        seen: dict[object, int] = {}
        for i, item in enumerate(items):
            term = self.term(item, f"{where}[{i}]", fuzzy, fields, context=context,
                             within_alone=within_alone)
            if term is None:
                continue
            # The same words with other options (another 'near') are another term.
            key = _term_key(term, self.near_keys)
            if key in seen:
                self.problem(item, f"{where}[{i}]: duplicate term {term.text!r} "
                                   f"(also at line {seen[key]})")
                continue
            seen[key] = item.start_mark.line + 1
            out.append(term)
        return tuple(out) if out else None

    def near_terms(self, node: yaml.Node, where: str, fuzzy: float,
                   fields: tuple[str, ...]) -> tuple[Term, ...]:
        """A term's ``near`` list. Rule files repeat one list by YAML alias
        (``near: *oil_words``), the same node each time: a list read without a
        problem is read once, and its terms shared."""
        key = (id(node), fuzzy, fields)
        known = self.near_lists.get(key)
        if known is not None:
            return known[1]
        before = len(self.problems)
        near = self.terms(node, where, fuzzy, fields, context=False) or ()
        if len(self.problems) == before:
            self.near_lists[key] = (node, near)  # the node kept: its id stays its own
        return near

    def term(self, node: yaml.Node, where: str, fuzzy: float, fields: tuple[str, ...],
             *, context: bool, within_alone: bool) -> Term | None:
        import yaml

        if isinstance(node, yaml.MappingNode):
            allowed: tuple[str, ...]
            if context:
                allowed = _TERM_KEYS
            elif within_alone:
                allowed = ("term", "fuzzy", "fields", "within")
            else:
                allowed = ("term", "fuzzy", "fields")
            keys = self.mapping(node, where, allowed, ("term",))
            if keys is None or "term" not in keys:
                return None
            text_node = keys["term"]
            where_text = f"{where}.term"
        else:
            keys = {}
            text_node = node
            where_text = where
        text = self.text(text_node, where_text)
        if text is None:
            return None
        try:
            term_words(text)
        except ValueError as e:
            self.problem(text_node, f"{where_text}: invalid term {text!r}: {e}")
            return None
        if "fuzzy" in keys:
            fuzzy = self.number(keys["fuzzy"], f"{where}.fuzzy", MIN_FUZZY, 100,
                                whole=False) or fuzzy
        if "fields" in keys:
            fields = self.fields(keys["fields"], f"{where}.fields") or fields
        near: tuple[Term, ...] = ()
        if "near" in keys:
            near = self.near_terms(keys["near"], f"{where}.near", fuzzy, fields)
        within = None
        if "within" in keys:
            within = self.within(keys["within"], f"{where}.within")
            if not within_alone and "near" not in keys:
                self.problem(keys["within"], f"{where}.within: needs 'near' (the terms "
                                             "that must occur within that many words)")
        return Term(text=text, fuzzy=fuzzy, fields=fields, near=near, within=within)

    def requirements(self, node: yaml.Node, fuzzy: float,
                     fields: tuple[str, ...]) -> tuple[Requirement, ...]:
        items = self.sequence(node, "require")
        if items is None:
            return ()
        out: list[Requirement] = []
        for i, item in enumerate(items):
            where = f"require[{i}]"
            keys = self.mapping(item, where, _REQUIRE_KEYS, ("terms",))
            if keys is None:
                continue
            name = f"require[{i}]"
            if "name" in keys:
                name = self.text(keys["name"], f"{where}.name") or name
            within = self.within(keys["within"], f"{where}.within") if "within" in keys \
                else None
            terms = self.terms(keys["terms"], f"{where}.terms", fuzzy, fields, context=True) \
                if "terms" in keys else None
            if terms:
                out.append(Requirement(name=name, terms=terms, within=within))
        return tuple(out)


def _term_key(term: Term, near_keys: dict[int, tuple[tuple[Term, ...], object]] | None = None
              ) -> object:
    """What makes two terms the same: their normalised words and every option.
    ``near_keys``: the keys of near lists already met (a list repeated by alias)."""
    if not term.near:
        near: object = ()
    elif near_keys is None:
        near = tuple(_term_key(n) for n in term.near)
    else:
        known = near_keys.get(id(term.near))
        if known is None:  # the tuple kept with its key: its id stays its own
            known = near_keys[id(term.near)] = (term.near,
                                                tuple(_term_key(n) for n in term.near))
        near = known[1]
    return (term_words(term.text), term.fuzzy, term.fields, term.within, near)


def _kind(node: yaml.Node) -> str:
    """How a YAML node reads to a rule author: 'a list', 'a mapping', 'nothing', 'text'."""
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if node.tag == "tag:yaml.org,2002:null":
        return "nothing"
    if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
        return f"the number {node.value}"
    if node.tag == "tag:yaml.org,2002:bool":
        return f"the boolean {node.value}"
    return f"the text {node.value!r}"
