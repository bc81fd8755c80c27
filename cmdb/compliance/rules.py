"""Compliance rules: declared as data, versioned, mapped to controls.

A rule file (``cmdb/compliance/rules/*.yaml``, or any directory passed as
``rule_dirs``) holds a list of rules::

    rules:
      - id: aws.s3.public-bucket        # stable; findings are keyed by it
        version: 2                      # bump when the logic changes
        title: S3 bucket is publicly accessible
        severity: high                  # info, low, medium, high, critical
        applies_to: [aws.s3.bucket]     # types, globs (aws.*), class:storage, !excluded
        states: [active, optimise]      # optional; default: every state but stale/retired/disposed
        controls:
          - {framework: CIS AWS Foundations v3.0.0, id: "2.1.4"}
          - {framework: NIST 800-53, id: AC-3}
        when: {attr: public, is: true}
        remediation: Turn on S3 Block Public Access for the bucket.

``when`` is a small condition language over one CI: ``{attr: NAME, is: V}``,
``{attr: NAME, in: [..]}``, ``{attr: NAME, missing: true}``, ``{field: owner,
empty: true}``, ``{tag_missing: [Owner, owner]}``, combined with ``all``,
``any`` and ``not``. A condition on a value the CI does not carry is false: an
unknown is never a finding. What needs more than one CI's values (a security
group's rules, the graph around a CI) is a named ``check`` with ``params``,
implemented in :mod:`cmdb.compliance.checks`.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cmdb.compliance.errors import RuleError
from cmdb.model import CI
from cmdb.vocabulary import vocabulary

__all__ = [
    "DEFAULT_STATES",
    "SEVERITIES",
    "Control",
    "Rule",
    "load_rules",
    "matches",
    "severity_rank",
]

log = logging.getLogger(__name__)

SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
DEFAULT_STATES: tuple[str, ...] = ("planned", "provisioned", "active", "optimise")
_RULE_KEYS = frozenset(
    {"id", "version", "title", "severity", "applies_to", "states", "controls", "when", "check", "params", "remediation", "description"}
)
_CONDITION_KEYS = frozenset({"attr", "field", "is", "in", "missing", "empty", "tag_missing", "all", "any", "not"})


def severity_rank(severity: str) -> int:
    """0 for info up to 4 for critical; unknown severities rank lowest."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


@dataclass(frozen=True, slots=True)
class Control:
    """A control a rule maps to, e.g. CIS AWS Foundations 2.1.4 or NIST 800-53 AC-3."""

    framework: str
    id: str
    title: str = ""

    def __str__(self) -> str:
        return f"{self.framework} {self.id}"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    version: int
    title: str
    severity: str
    applies_to: tuple[str, ...]
    controls: tuple[Control, ...]
    states: tuple[str, ...] = DEFAULT_STATES
    when: dict[str, Any] | None = None
    check: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    remediation: str = ""
    description: str = ""
    origin: str = ""  # the file it was read from

    def types(self) -> frozenset[str]:
        """The vocabulary's CI types this rule applies to."""
        vocab = vocabulary()
        chosen: set[str] = set()
        excluded: set[str] = set()
        for pattern in self.applies_to:
            target = excluded if pattern.startswith("!") else chosen
            pattern = pattern.lstrip("!")
            if pattern.startswith("class:"):
                target.update(vocab.types_of_class(pattern[6:]))
            else:
                target.update(name for name in vocab.types if fnmatch.fnmatchcase(name, pattern))
        return frozenset(chosen - excluded)


def _attr(ci: CI, name: str) -> Any:
    return ci.attributes.get(name)


def matches(condition: dict[str, Any], ci: CI) -> str | None:
    """Why ``ci`` meets ``condition`` (a short evidence text), or None when it does not."""
    if "all" in condition:
        reasons = [matches(part, ci) for part in condition["all"]]
        return "; ".join(r for r in reasons if r) if all(r is not None for r in reasons) else None
    if "any" in condition:
        for part in condition["any"]:
            reason = matches(part, ci)
            if reason is not None:
                return reason
        return None
    if "not" in condition:
        return "not (" + _describe(condition["not"]) + ")" if matches(condition["not"], ci) is None else None
    if "tag_missing" in condition:
        wanted = {str(k).lower() for k in condition["tag_missing"]}
        have = {k.lower() for k, v in ci.tags.items() if v.strip()}
        return None if wanted & have else f"no tag among {', '.join(condition['tag_missing'])}"
    if "field" in condition:
        value = getattr(ci, condition["field"], "")
        if condition.get("empty"):
            return f"{condition['field']} is empty" if not value else None
        if "is" in condition:
            return f"{condition['field']} = {value}" if value == condition["is"] else None
        if "in" in condition:
            return f"{condition['field']} = {value}" if value in condition["in"] else None
        raise RuleError(f"condition on field {condition['field']} needs empty, is or in")
    if "attr" in condition:
        name = condition["attr"]
        if condition.get("missing"):
            return f"{name} is not set" if _attr(ci, name) is None else None
        value = _attr(ci, name)
        if value is None:
            return None  # unknown is never a finding
        if "is" in condition:
            return f"{name} = {_show(value)}" if value == condition["is"] else None
        if "in" in condition:
            return f"{name} = {_show(value)}" if value in condition["in"] else None
        raise RuleError(f"condition on attribute {name} needs is, in or missing")
    raise RuleError(f"unknown condition {condition!r}")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _describe(condition: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in condition.items())


def _check_condition(condition: Any, where: str) -> None:
    if not isinstance(condition, dict) or not condition:
        raise RuleError(f"{where}: a condition is a non-empty mapping, not {condition!r}")
    unknown = set(condition) - _CONDITION_KEYS
    if unknown:
        raise RuleError(f"{where}: unknown condition keys {', '.join(sorted(unknown))}")
    for key in ("all", "any"):
        if key in condition:
            if not isinstance(condition[key], list) or not condition[key]:
                raise RuleError(f"{where}: {key} takes a non-empty list of conditions")
            for part in condition[key]:
                _check_condition(part, where)
    if "not" in condition:
        _check_condition(condition["not"], where)


def _rule(spec: Any, origin: str) -> Rule:
    from cmdb.compliance.checks import CHECKS

    if not isinstance(spec, dict):
        raise RuleError(f"{origin}: a rule is a mapping, not {type(spec).__name__}")
    where = f"{origin}: rule {spec.get('id', '?')}"
    unknown = set(spec) - _RULE_KEYS
    if unknown:
        raise RuleError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    missing = [k for k in ("id", "version", "title", "severity", "applies_to", "controls") if k not in spec]
    if missing:
        raise RuleError(f"{where}: missing {', '.join(missing)}")
    if spec["severity"] not in SEVERITIES:
        raise RuleError(f"{where}: severity {spec['severity']!r} is not one of {', '.join(SEVERITIES)}")
    if not isinstance(spec["version"], int) or spec["version"] < 1:
        raise RuleError(f"{where}: version must be a positive integer")
    if ("when" in spec) == ("check" in spec):
        raise RuleError(f"{where}: give exactly one of 'when' (a condition) or 'check' (a named check)")
    if "when" in spec:
        _check_condition(spec["when"], where)
    if "check" in spec and spec["check"] not in CHECKS:
        raise RuleError(f"{where}: unknown check {spec['check']!r} (known: {', '.join(sorted(CHECKS))})")
    controls = spec["controls"]
    if not isinstance(controls, list) or not controls:
        raise RuleError(f"{where}: controls must list at least one control it maps to")
    applies = spec["applies_to"]
    if isinstance(applies, str):
        applies = [applies]
    states = tuple(spec.get("states") or DEFAULT_STATES)
    bad_states = set(states) - set(vocabulary().lifecycle_states)
    if bad_states:
        raise RuleError(f"{where}: unknown lifecycle states {', '.join(sorted(bad_states))}")
    rule = Rule(
        id=str(spec["id"]),
        version=spec["version"],
        title=str(spec["title"]),
        severity=spec["severity"],
        applies_to=tuple(str(a) for a in applies),
        controls=tuple(
            Control(str(c["framework"]), str(c["id"]), str(c.get("title", ""))) for c in controls if isinstance(c, dict)
        ),
        states=states,
        when=spec.get("when"),
        check=str(spec.get("check", "")),
        params=dict(spec.get("params") or {}),
        remediation=str(spec.get("remediation", "")).strip(),
        description=str(spec.get("description", "")).strip(),
        origin=origin,
    )
    if len(rule.controls) != len(controls):
        raise RuleError(f"{where}: each control is a mapping with framework and id")
    if not rule.types():
        raise RuleError(f"{where}: applies_to {list(rule.applies_to)} names no known CI type")
    return rule


def _texts(rule_dirs: Sequence[str | Path]) -> Iterable[tuple[str, str]]:
    bundled = resources.files("cmdb.compliance") / "rules"
    for entry in sorted(bundled.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            yield f"rules/{entry.name}", entry.read_text(encoding="utf-8")
    for folder in rule_dirs:
        path = Path(folder)
        files = [path] if path.is_file() else sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        if not files:
            raise RuleError(f"{path}: no rule files (*.yaml) there")
        for file in files:
            yield str(file), file.read_text(encoding="utf-8")


def load_rules(rule_dirs: Sequence[str | Path] = (), *, bundled: bool = True) -> list[Rule]:
    """The bundled rules plus those in ``rule_dirs``; a later rule with the same id replaces an earlier one."""
    found: dict[str, Rule] = {}
    for origin, text in _texts(rule_dirs):
        if not bundled and origin.startswith("rules/"):
            continue
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise RuleError(f"{origin}: not valid YAML: {exc}") from None
        specs = data.get("rules") if isinstance(data, dict) else None
        if not isinstance(specs, list):
            raise RuleError(f"{origin}: expected a mapping with a 'rules' list")
        for spec in specs:
            rule = _rule(spec, origin)
            if rule.id in found and found[rule.id].origin == origin:
                raise RuleError(f"{origin}: rule {rule.id} declared twice")
            found[rule.id] = rule
    log.debug("loaded %d compliance rules", len(found))
    return sorted(found.values(), key=lambda r: r.id)
