"""The file connector: hand-kept CIs and relationships from YAML, JSON, JSON lines or CSV.

For what has no API: on-premises hardware, business services, applications,
teams, licences, contracts. Each file is one scope (``scope:`` in the file, or
``file:<absolute path>``); a malformed record is reported as ``file:line`` and
skipped, the rest lands. A file that cannot be parsed at all makes its sweep
incomplete, so nothing it held goes stale.

YAML / JSON::

    scope: datacenter-lon1            # optional
    defaults: {provider: onprem, environment: production}
    cis:
      - {id: srv-lon1-001, type: hardware.server, name: lon1-db-01, owner: team-data,
         tags: {rack: A3}, attributes: {serial_number: CZ2341, cpu_cores: 32}}
    relationships:
      - {from: app-payments, type: RUNS_ON, to: srv-lon1-001, evidence: "CMDB import 2026-10"}

CSV: a CI file has the columns ``id`` and ``type`` (plus any common field,
``tag:KEY``, ``attr:KEY``, ``aliases`` separated by ``;``); a relationship
file has ``from``, ``type`` and ``to`` (plus ``evidence``, ``confidence``).
JSON lines: one CI object a line, or a relationship object with ``from``/``to``.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from cmdb.connectors.base import Batch, Event, Problem, ScopeDone
from cmdb.errors import ConnectorError, ValidationError
from cmdb.model import CI, COMMON_FIELDS, Evidence, Relationship, validate_ci, validate_relationship
from cmdb.vocabulary import vocabulary

__all__ = ["FileConnector"]

log = logging.getLogger(__name__)

BATCH_SIZE = 2000
_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "yaml", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_CI_KEYS = frozenset({"id", "type", "tags", "attributes", "aliases", *COMMON_FIELDS})
_REL_KEYS = frozenset({"from", "type", "to", "evidence", "confidence"})


class FileConnector:
    """Sweeps one or more files; each file is its own scope."""

    source = "file"

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self.paths = [Path(p) for p in paths]
        for path in self.paths:
            if path.suffix.lower() not in _SUFFIXES:
                raise ConnectorError(
                    f"{path}: unknown file type {path.suffix or '(none)'}",
                    hint="use .yaml, .yml, .json, .jsonl or .csv",
                )
            if not path.is_file():
                raise ConnectorError(f"{path}: no such file", hint="check the path")

    def sweep(self) -> Iterator[Event]:
        for path in self.paths:
            yield from _FileSweep(path).events()


class _FileSweep:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.scope = f"file:{path.resolve()}"
        self.defaults: dict[str, Any] = {}
        self.complete = True
        self.reason = ""

    def where(self, line: int) -> str:
        return f"{self.path}:{line}"

    def events(self) -> Iterator[Event]:
        kind = _SUFFIXES[self.path.suffix.lower()]
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            yield Problem(str(self.path), f"cannot read: {exc}")
            yield ScopeDone(self.scope, False, f"cannot read {self.path}")
            return
        records = {"yaml": self.yaml_records, "jsonl": self.jsonl_records, "csv": self.csv_records}[kind](text)
        batch = Batch(self.scope)
        for item in records:
            if isinstance(item, Problem):
                yield item
                continue
            batch.scope = self.scope  # a YAML file may declare its scope before its records
            if isinstance(item, CI):
                batch.cis.append(item)
            else:
                batch.relationships.append(item)
            if len(batch.cis) + len(batch.relationships) >= BATCH_SIZE:
                yield batch
                batch = Batch(self.scope)
        if batch.cis or batch.relationships:
            yield batch
        yield ScopeDone(self.scope, self.complete, self.reason)

    # --- formats ------------------------------------------------------------
    def yaml_records(self, text: str) -> Iterator[CI | Relationship | Problem]:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 1
            self.complete, self.reason = False, "the file could not be parsed"
            yield Problem(self.where(line), f"not valid YAML/JSON: {getattr(exc, 'problem', exc)}")
            return
        if root is None:
            return
        if not isinstance(root, yaml.MappingNode):
            self.complete, self.reason = False, "the file has no cis/relationships mapping"
            yield Problem(self.where(root.start_mark.line + 1), "expected a mapping with 'cis' and/or 'relationships'")
            return
        sections = {key.value: value for key, value in root.value if isinstance(key, yaml.ScalarNode)}
        unknown = set(sections) - {"scope", "defaults", "cis", "relationships"}
        if unknown:
            yield Problem(self.where(1), f"unknown top-level keys ignored: {', '.join(sorted(unknown))}")
        if "scope" in sections:
            self.scope = str(_construct(sections["scope"]))
        if "defaults" in sections:
            defaults = _construct(sections["defaults"])
            if not isinstance(defaults, dict):
                yield Problem(self.where(sections["defaults"].start_mark.line + 1), "defaults must be a mapping")
            else:
                self.defaults = defaults
        for name, build in (("cis", self.ci), ("relationships", self.relationship)):
            node = sections.get(name)
            if node is None:
                continue
            if not isinstance(node, yaml.SequenceNode):
                self.complete, self.reason = False, f"'{name}' is not a list"
                yield Problem(self.where(node.start_mark.line + 1), f"'{name}' must be a list")
                continue
            for item in node.value:
                yield build(_construct(item), item.start_mark.line + 1)

    def jsonl_records(self, text: str) -> Iterator[CI | Relationship | Problem]:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Problem(self.where(number), f"not valid JSON: {exc.msg} at column {exc.colno}")
                continue
            is_rel = isinstance(record, dict) and "from" in record and "to" in record
            yield (self.relationship if is_rel else self.ci)(record, number)

    def csv_records(self, text: str) -> Iterator[CI | Relationship | Problem]:
        reader = csv.DictReader(text.splitlines())
        header = reader.fieldnames or []
        is_rel = {"from", "to", "type"} <= set(header)
        if not is_rel and not {"id", "type"} <= set(header):
            self.complete, self.reason = False, "the CSV header names neither a CI nor a relationship file"
            yield Problem(self.where(1), "a CSV file needs the columns id,type (CIs) or from,type,to (relationships)")
            return
        for row in reader:
            number = reader.line_num
            if None in row:
                yield Problem(self.where(number), "more values than columns in the header")
                continue
            values = {k: v for k, v in row.items() if v not in ("", None)}
            if is_rel:
                yield self.relationship(values, number)
                continue
            try:
                yield self.ci(_csv_ci(values), number)
            except ValidationError as exc:
                yield Problem(self.where(number), str(exc), values.get("id", ""))

    # --- records ------------------------------------------------------------
    def ci(self, record: Any, line: int) -> CI | Problem:
        if not isinstance(record, dict):
            return Problem(self.where(line), "a CI must be a mapping")
        record = {**self.defaults, **record}
        ci_id = record.get("id")
        unknown = set(record) - _CI_KEYS
        if unknown:
            return Problem(self.where(line), f"unknown fields {', '.join(sorted(unknown))}", str(ci_id or ""))
        missing = [k for k in ("id", "type") if not record.get(k)]
        if missing:
            return Problem(self.where(line), f"missing {' and '.join(missing)}", str(ci_id or ""))
        try:
            aliases = record.get("aliases") or []
            if isinstance(aliases, str):
                aliases = [aliases]
            fields = {name: _text(record.get(name), name) for name in COMMON_FIELDS if name in record}
            tags = record.get("tags") or {}
            attributes = record.get("attributes") or {}
            if not isinstance(tags, dict) or not isinstance(attributes, dict):
                raise ValidationError("tags and attributes must be mappings")
            ci = CI(
                id=_text(ci_id, "id"),
                type=_text(record["type"], "type"),
                tags={str(k): _text(v, f"tags.{k}") for k, v in tags.items()},
                attributes=attributes,
                aliases=tuple(str(a) for a in aliases),
            )
            for name, value in fields.items():
                setattr(ci, name, value)
            ci.provider = ci.provider or "onprem"
            ci.name = ci.name or ci.id
            ci.scope = ci.scope or self.scope
            validate_ci(ci)
        except ValidationError as exc:
            return Problem(self.where(line), str(exc), str(ci_id))
        return ci

    def relationship(self, record: Any, line: int) -> Relationship | Problem:
        if not isinstance(record, dict):
            return Problem(self.where(line), "a relationship must be a mapping")
        unknown = set(record) - _REL_KEYS
        missing = [k for k in ("from", "type", "to") if not record.get(k)]
        if unknown or missing:
            what = f"unknown fields {', '.join(sorted(unknown))}" if unknown else f"missing {', '.join(missing)}"
            return Problem(self.where(line), what, str(record.get("from", "")))
        try:
            confidence = float(record.get("confidence", 1.0))
        except (TypeError, ValueError):
            return Problem(self.where(line), f"confidence must be a number: {record['confidence']!r}")
        evidence = record.get("evidence") or f"{self.path.name}:{line}"
        rel = Relationship(
            from_id=str(record["from"]),
            type=str(record["type"]),
            to_id=str(record["to"]),
            evidence=(Evidence("file", str(evidence)),),
            confidence=confidence,
        )
        try:
            validate_relationship(rel)
        except ValidationError as exc:
            return Problem(self.where(line), str(exc), rel.from_id)
        return rel


def _construct(node: yaml.Node) -> Any:
    """Build the Python value of one composed YAML node (safe types only)."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise ValidationError(f"{name} must be a single value, not a {type(value).__name__}")
    return str(value)


def _csv_ci(values: dict[str, str]) -> dict[str, Any]:
    """A CSV row as a CI record: tag:KEY and attr:KEY columns, typed by the vocabulary."""
    record: dict[str, Any] = {}
    tags: dict[str, str] = {}
    attributes: dict[str, Any] = {}
    kinds = vocabulary().ci_type(values["type"]).attributes if values.get("type") in vocabulary().types else {}
    for column, value in values.items():
        if column.startswith("tag:"):
            tags[column[4:]] = value
        elif column.startswith("attr:"):
            key = column[5:]
            attributes[key] = _typed(value, kinds.get(key, "str"), column)
        elif column == "aliases":
            record["aliases"] = [a.strip() for a in value.split(";") if a.strip()]
        else:
            record[column] = value
    if tags:
        record["tags"] = tags
    if attributes:
        record["attributes"] = attributes
    return record


def _typed(value: str, kind: str, column: str) -> Any:
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            lowered = value.strip().lower()
            if lowered in ("true", "yes", "1"):
                return True
            if lowered in ("false", "no", "0"):
                return False
            raise ValueError(value)
        if kind == "list":
            return [v.strip() for v in value.split(";") if v.strip()]
        if kind == "map":
            parsed = json.loads(value)
            if not isinstance(parsed, dict):
                raise ValueError(value)
            return parsed
    except ValueError:
        raise ValidationError(f"column {column} must be {kind}: {value!r}") from None
    return value
