"""Rule files: every mistake becomes one exact ``path:line:col: message`` problem.

One fixture per mistake in ``tests/data/rules_bad/``, named after it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from mistakes import BAD, EXPECTED

from monitor.errors import RuleFileError
from monitor.models import Severity
from monitor.rules import (
    DEFAULT_FUZZY,
    Requirement,
    Rule,
    RuleSet,
    Term,
    load_rule_file,
    load_rules,
    rule_files,
    shipped_rules_dir,
)


def _problems(path: Path) -> list[str]:
    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_mistake_is_reported_exactly(name: str) -> None:
    path = BAD / f"{name}.yaml"
    assert _problems(path) == [f"{path}:{where}" for where in EXPECTED[name]]


def test_every_fixture_has_an_expectation() -> None:
    names = {p.stem for p in BAD.glob("*.yaml")}
    assert names - {"duplicate_id", "empty_file"} == set(EXPECTED)


def test_an_empty_file_has_no_line() -> None:
    path = BAD / "empty_file.yaml"
    assert _problems(path) == [
        f"{path}: empty file (a rule needs id, title, description, severity and terms)"]


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yaml"):
        shutil.copy(BAD / "duplicate_id.yaml", tmp_path / name)
    with pytest.raises(RuleFileError) as info:
        load_rules(tmp_path)
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'b.yaml'}:1:5: id: duplicate rule id 'same-id' "
        f"(already used in {tmp_path / 'a.yaml'}:1)"]


def test_hidden_and_editor_files_are_not_rule_files(tmp_path: Path) -> None:
    rule = (shipped_rules_dir() / "btc-diversion.yaml").read_bytes()
    (tmp_path / "btc-diversion.yaml").write_bytes(rule)
    # Copies of the rule an editor or a sync tool leaves: loaded, each would be a duplicate id.
    for name in (".#btc-diversion.yaml", ".btc.yaml", "btc.yaml~", "#btc.yaml#",
                 ".btc.yaml.swp", "btc.yaml.swp", "~btc.yaml", "btc.yml.orig"):
        (tmp_path / name).write_bytes(rule)
    (tmp_path / ".#cpc.yaml").symlink_to("root@host.1234:1700000000")  # Emacs' lock: dangling
    assert load_rules(tmp_path).ids == ("btc-diversion",)
    assert [p.name for p in rule_files(tmp_path)] == ["btc-diversion.yaml"]
    (tmp_path / "other.yml").write_bytes(rule.replace(b"btc-diversion", b"other"))
    assert load_rules(tmp_path).ids == ("btc-diversion", "other")


def test_load_rules_reports_every_problem_of_every_file(tmp_path: Path) -> None:
    for name in ("unknown_key", "tab_indent", "duplicate_key"):
        shutil.copy(BAD / f"{name}.yaml", tmp_path / f"{name}.yaml")
    shutil.copy(BAD / "duplicate_id.yaml", tmp_path / "fine.yml")
    (tmp_path / "notes.txt").write_text("not a rule", encoding="utf-8")
    with pytest.raises(RuleFileError) as info:
        load_rules(tmp_path)
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'duplicate_key.yaml'}:7:1: duplicate key 'terms' (first at line 5)",
        f"{tmp_path / 'tab_indent.yaml'}:6:1: invalid YAML: a tab character; indent with "
        "spaces only",
        f"{tmp_path / 'unknown_key.yaml'}:5:1: unknown key 'fuzy' (did you mean 'fuzzy'?)",
    ]
    # str() of the error is every problem, one per line, as `check` prints them.
    assert str(info.value).count("\n") == 2


def test_a_missing_folder_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError) as info:
        load_rules(tmp_path / "nowhere")
    assert str(info.value) == f"{tmp_path / 'nowhere'}: no such rules folder"


def test_a_valid_rule_is_parsed_into_frozen_values(tmp_path: Path) -> None:
    path = tmp_path / "grain.yaml"
    path.write_text(
        "id: grain\n"
        "title: Grain bans\n"
        "description: >\n  Bans on grain.\n"
        "severity: High\n"
        "fields: [title]\n"
        "terms:\n"
        "  - wheat\n"
        "  - term: grain*\n"
        "    fuzzy: 100\n"
        "    near: [Russia*]\n"
        "    within: 5\n"
        "require:\n"
        "  - terms: [ban]\n"
        "    within: 10\n"
        "exclude:\n"
        "  - term: grain deal\n"
        "    within: 3\n", encoding="utf-8")
    rule = load_rule_file(path)
    assert isinstance(rule, Rule)
    assert (rule.id, rule.title, rule.description, rule.severity) == \
        ("grain", "Grain bans", "Bans on grain.", Severity.HIGH)
    assert rule.path == str(path)
    assert re.fullmatch(r"[0-9a-f]{12}", rule.version)
    assert rule.fields == ("title",)
    assert rule.fuzzy == DEFAULT_FUZZY
    assert rule.terms == (
        Term("wheat", DEFAULT_FUZZY, ("title",)),
        Term("grain*", 100, ("title",), (Term("Russia*", 100, ("title",)),), 5),
    )
    assert rule.require == (Requirement("require[0]", (Term("ban", DEFAULT_FUZZY, ("title",)),),
                                         10),)
    assert rule.exclude == (Term("grain deal", DEFAULT_FUZZY, ("title",), (), 3),)
    with pytest.raises(AttributeError):
        rule.id = "other"  # type: ignore[misc]


def test_version_follows_the_file_bytes(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    text = "id: r\ntitle: T\ndescription: D\nseverity: low\nterms: [wheat]\n"
    path.write_text(text, encoding="utf-8")
    first = load_rule_file(path).version
    path.write_text(text + "# a comment changes the version\n", encoding="utf-8")
    assert load_rule_file(path).version != first


def test_ruleset_lookup() -> None:
    rules = load_rules(shipped_rules_dir())
    assert isinstance(rules, RuleSet)
    assert rules.ids == ("btc-diversion", "cpc-disruption", "eaeu-grain-ban",
                         "sanctioned-transit")
    rule = rules.get("cpc-disruption")
    assert rule is not None and rule.severity is Severity.HIGH
    assert rules.get("nope") is None
    assert len(rules) == 4 and [r.id for r in rules] == list(rules.ids)


def test_the_readme_example_is_a_valid_rule(tmp_path: Path) -> None:
    readme = (shipped_rules_dir() / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", readme, re.S)
    assert example is not None
    path = tmp_path / "example.yaml"
    path.write_text(example.group(1), encoding="utf-8")
    rule = load_rule_file(path)
    assert rule.id == "cpc-disruption"
    assert [t.text for t in rule.exclude] == ["Bitcoin", "Communist Party"]


def _node_tree(node: object) -> list[object]:
    """A composed YAML node as comparable data: kind, tag, value and both marks."""
    import yaml

    assert isinstance(node, yaml.Node)
    out: list[object] = [type(node).__name__, node.tag, node.start_mark.line,
                         node.start_mark.column, node.end_mark.line, node.end_mark.column]
    if isinstance(node, yaml.ScalarNode):
        out.append(node.value)
    elif isinstance(node, yaml.SequenceNode):
        for child in node.value:
            out += _node_tree(child)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out += _node_tree(key) + _node_tree(value)
    return out


def test_libyaml_and_the_pure_loader_compose_the_same_tree() -> None:
    # Rule files are composed by libyaml for speed; problem positions come from its
    # marks, so they must be the pure loader's (multi-byte text included).
    yaml = pytest.importorskip("yaml")
    if not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("PyYAML without libyaml: the pure loader is the only one")
    files = sorted(shipped_rules_dir().glob("*.yaml")) + sorted(BAD.glob("*.yaml"))
    compared = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            pure = yaml.compose(text, Loader=yaml.SafeLoader)
        except (UnicodeDecodeError, yaml.YAMLError):
            continue  # refused before or by the pure loader, which gives the message
        fast = yaml.compose(text, Loader=yaml.CSafeLoader)
        assert (pure is None) == (fast is None), path
        if pure is not None:
            assert _node_tree(fast) == _node_tree(pure), path
            compared += 1
    assert compared >= 20  # the shipped rules and the fixtures that are YAML at all
