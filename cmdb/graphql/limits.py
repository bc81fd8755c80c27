"""The guards on the endpoint, built from one ``Limits`` object.

Strawberry's own limiters bound depth, aliases and tokens. Strawberry has no
cost limit, so ``TraversalCost`` adds one: before execution it walks the
operation and sums, over every traversal field, ``depth x first`` times the
page sizes enclosing it; above ``max_traversal_cost`` the request is rejected
with LIMIT_EXCEEDED and nothing runs. Resolvers check single arguments with
``page_size`` / ``traversal_depth``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    ASTValidationRule,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension, ValidationCache

from cmdb.errors import LimitExceeded
from cmdb.graphql.errors import Code, ErrorCodes
from cmdb.graphql.settings import Limits

__all__ = ["TRAVERSAL_FIELDS", "Document", "Guards", "extensions", "page_size", "traversal_cost", "traversal_depth"]

log = logging.getLogger(__name__)

TRAVERSAL_FIELDS = frozenset({"dependencies", "dependents", "impact", "affectedServices", "changeRisk"})
"""Fields that walk the graph; each has ``depth`` and ``first`` (or ``limit``) arguments."""


def page_size(first: int | None, limits: Limits) -> int:
    if first is None:
        return limits.default_page_size
    if first < 0:
        raise LimitExceeded(f"first must not be negative, got {first}")
    if first > limits.max_page_size:
        raise LimitExceeded(f"first={first} is above the page size cap of {limits.max_page_size}")
    return first


def traversal_depth(depth: int, limits: Limits) -> int:
    if depth < 1:
        raise LimitExceeded(f"depth must be at least 1, got {depth}")
    if depth > limits.max_traversal_depth:
        raise LimitExceeded(f"depth={depth} is above the traversal depth cap of {limits.max_traversal_depth}")
    return depth


def _int_arg(args: dict[str, Any], default: int, *names: str) -> int:
    for name in names:
        value = args.get(name)
        if isinstance(value, int):
            return max(value, 1)
    return default


def traversal_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any] | None,
    limits: Limits,
) -> int:
    """depth x first (x start CIs) of every traversal field, times the page sizes that enclose it."""
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if not isinstance(coerced, VariableValues):
        return 0  # execution reports the bad variables

    def walk(selection_set: SelectionSetNode | None, parent: Any, multiplier: int, seen: frozenset[str]) -> int:
        if selection_set is None or not isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                definition = parent.fields.get(selection.name.value)
                if definition is None:
                    continue
                try:
                    args = get_argument_values(definition, selection, coerced)
                except GraphQLError:
                    args = {}  # execution reports the bad argument
                first = _int_arg(args, limits.default_page_size, "first", "limit")
                inner = multiplier
                if selection.name.value in TRAVERSAL_FIELDS:
                    starts = max(1, len(args.get("ids") or args.get("failing") or [None]))
                    total += multiplier * starts * _int_arg(args, 1, "depth", "maxDepth") * first
                    inner = multiplier * first
                elif "first" in args:
                    inner = multiplier * first
                named = definition.type
                while hasattr(named, "of_type"):
                    named = named.of_type
                total += walk(selection.selection_set, named, inner, seen)
            elif isinstance(selection, InlineFragmentNode):
                target = schema.get_type(selection.type_condition.name.value) if selection.type_condition else parent
                total += walk(selection.selection_set, target, multiplier, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None or name in seen:
                    continue
                target = schema.get_type(fragment.type_condition.name.value)
                total += walk(fragment.selection_set, target, multiplier, seen | {name})
        return total

    return walk(operation.selection_set, root, 1, frozenset())


_parse = functools.lru_cache(maxsize=256)(parse)


class Document(ValidationCache):
    """Parsing and validation of the document, both cached across requests, within the
    token, depth and alias limits (strawberry's limiters' rules, built once).

    One extension instead of five: each extension costs every request a few hooks.
    A document that does not parse is left to strawberry's own parse, which reports
    the error like any client error (with a code).
    """

    def __init__(self, limits: Limits, rules: tuple[type[ASTValidationRule], ...]) -> None:
        super().__init__(maxsize=256)
        self.max_tokens = limits.max_tokens
        self.rules = rules

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        context.validation_rules = context.validation_rules + self.rules
        yield

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None:
            try:
                context.graphql_document = _parse(context.query, **context.parse_options)
            except GraphQLError:
                context.graphql_document = None
        yield


class Guards(SchemaExtension):
    """Before anything runs: the permission check, then the traversal cost bound."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def on_execute(self) -> Iterator[None]:
        from cmdb.graphql.auth import check_permission

        check_permission(self.execution_context)
        self.check_cost()
        yield

    def check_cost(self) -> None:
        context = self.execution_context
        document = context.graphql_document
        query = context.query or ""
        if (
            document is not None
            and context.result is None
            and (not query or any(name in query for name in TRAVERSAL_FIELDS))  # nothing to weigh otherwise
        ):
            fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if context.operation_name:
                operations = [o for o in operations if o.name is not None and o.name.value == context.operation_name]
            schema = context.schema._schema
            try:
                cost = sum(traversal_cost(schema, o, fragments, context.variables, self.limits) for o in operations[:1])
            except Exception:  # an extension must not raise: that would bypass error masking
                log.exception("could not weigh an operation")
                context.result = ExecutionResult(
                    data=None,
                    errors=[GraphQLError("Unexpected error.", extensions={"code": Code.INTERNAL_SERVER_ERROR.value})],
                )
                cost = 0
            if cost > self.limits.max_traversal_cost:
                message = (
                    f"traversal cost {cost:,} (depth x first x enclosing page sizes) is above "
                    f"the limit of {self.limits.max_traversal_cost:,}: lower depth or first"
                )
                context.result = ExecutionResult(
                    data=None, errors=[GraphQLError(message, extensions={"code": Code.LIMIT_EXCEEDED.value})]
                )


def extensions(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    """Every extension of the schema, as factories (one instance a request), errors first.

    The depth and alias rules are built once, so that the validation cache,
    keyed by the rule classes, is hit across requests.
    """
    rules = tuple(
        QueryDepthLimiter(max_depth=limits.max_query_depth).validation_rules
        + MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules
    )
    return [ErrorCodes, lambda: Document(limits, rules), lambda: Guards(limits)]
