"""The vocabulary is data; these are its invariants."""

from __future__ import annotations

import re

import pytest

from cmdb.errors import ValidationError
from cmdb.vocabulary import vocabulary

TYPE_NAME = re.compile(r"^[a-z0-9]+(\.[a-z0-9_]+)+$")
REL_NAME = re.compile(r"^[A-Z]+(_[A-Z]+)*$")


def test_every_type_is_well_named_and_in_a_declared_class() -> None:
    vocab = vocabulary()
    assert len(vocab.types) > 50
    for ci_type in vocab.types.values():
        assert TYPE_NAME.match(ci_type.name), ci_type.name
        assert ci_type.ci_class in vocab.classes, f"{ci_type.name} has unknown class {ci_type.ci_class}"
        for attribute, kind in ci_type.attributes.items():
            assert re.match(r"^[a-z][a-z0-9_]*$", attribute), f"{ci_type.name}.{attribute}"
            assert kind in ("str", "int", "float", "bool", "list", "map"), f"{ci_type.name}.{attribute}: {kind}"


def test_relationship_types_declare_how_impact_travels() -> None:
    vocab = vocabulary()
    impacts = {name: rel.impact for name, rel in vocab.relationship_types.items()}
    for name, impact in impacts.items():
        assert REL_NAME.match(name)
        assert impact in ("all", "any", "none")
    assert impacts["DEPENDS_ON"] == "all"
    assert impacts["ROUTES_TO"] == "any"
    assert impacts["OWNED_BY"] == "none"


def test_lifecycle_states_cover_the_asset_lifecycle() -> None:
    states = vocabulary().lifecycle_states
    assert states[0] == "planned" and "stale" in states and "retired" in states


def test_attribute_kinds_are_enforced() -> None:
    vocab = vocabulary()
    vocab.check_attributes("aws.ec2.volume", {"size_gb": 100, "encrypted": True, "undeclared": {"x": 1}})
    with pytest.raises(ValidationError, match="size_gb"):
        vocab.check_attributes("aws.ec2.volume", {"size_gb": "100"})
    with pytest.raises(ValidationError, match="must be int, got bool"):
        vocab.check_attributes("aws.ec2.volume", {"size_gb": True})
    with pytest.raises(ValidationError, match="unknown CI type"):
        vocab.ci_type("aws.nothing")
