"""The guards on the endpoint, built from one ``Limits`` object.

Strawberry's own limiters bound depth, aliases and tokens. Strawberry has no
cost limit, so ``Guards`` adds one: before execution it walks the
operation and sums, over every traversal field, ``depth x first`` times the
page sizes enclosing it; above ``max_traversal_cost`` the request is rejected
with LIMIT_EXCEEDED and nothing runs. An operation whose weighed arguments
read no variable weighs the same every time: its cost is kept (``Costs``). Resolvers check single arguments with
``page_size`` / ``traversal_depth``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    parse,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.schema.schema import validate_document

from cmdb.errors import LimitExceeded
from cmdb.graphql.errors import Code, ErrorCodes
from cmdb.graphql.kept import DOCUMENTS, KeptPer
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


WEIGHED_ARGUMENTS = frozenset({"first", "limit", "depth", "maxDepth", "ids", "failing"})
"""The arguments a cost is read from; a field with none of them passes its multiplier on."""


def _has_variable(value: ValueNode) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(_has_variable(item) for item in value.values)
    if isinstance(value, ObjectValueNode):
        return any(_has_variable(item.value) for item in value.fields)
    return False


def traversal_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any] | None,
    limits: Limits,
) -> tuple[int, bool]:
    """depth x first (x start CIs) of every traversal field, times the page sizes that
    enclose it; and whether it read a variable (else it is the operation's own)."""
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0, False
    coerced: VariableValues | None = None  # coerced when a weighed argument first reads one
    read_variable = False

    def arguments(definition: GraphQLField, selection: FieldNode) -> dict[str, Any]:
        nonlocal coerced, read_variable
        if any(_has_variable(a.value) for a in selection.arguments or () if a.name.value in WEIGHED_ARGUMENTS):
            read_variable = True
            if coerced is None:
                values = get_variable_values(schema, operation.variable_definitions or (), variables or {})
                if not isinstance(values, VariableValues):
                    raise _BadVariables
                coerced = values
        try:
            return get_argument_values(definition, selection, coerced)
        except GraphQLError:
            return {}  # execution reports the bad argument

    def walk(selection_set: SelectionSetNode | None, parent: Any, multiplier: int, seen: frozenset[str]) -> int:
        if selection_set is None or not isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                definition = parent.fields.get(selection.name.value)
                if definition is None:
                    continue
                inner = multiplier
                if not WEIGHED_ARGUMENTS.isdisjoint(definition.args):
                    args = arguments(definition, selection)
                    first = _int_arg(args, limits.default_page_size, "first", "limit")
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

    try:
        return walk(operation.selection_set, root, 1, frozenset()), read_variable
    except _BadVariables:
        return 0, True  # execution reports the bad variables


class _BadVariables(Exception):
    """The variables a weighed argument reads do not coerce."""


class Costs:
    """The cost of each operation that reads no variable to weigh, kept across requests
    (documents are parsed once, so the same operation comes again); others are weighed
    per request."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._kept: KeptPer[OperationDefinitionNode, int] = KeptPer(DOCUMENTS)

    def cost(
        self, schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode, variables: Any
    ) -> int:
        kept = self._kept.get(operation)
        if kept is not None:
            return kept
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        cost, read_variable = traversal_cost(schema, operation, fragments, variables, self.limits)
        return cost if read_variable else self._kept.put(operation, cost)


_parse = functools.lru_cache(maxsize=DOCUMENTS)(parse)


class Validations:
    """The validation errors of each document, kept across requests by the document's
    identity, with the schema and the rules it was checked by (strawberry's
    ``ValidationCache`` hashes the whole document, node by node, on every request)."""

    def __init__(self) -> None:
        self._kept: KeptPer[DocumentNode, tuple[GraphQLSchema, tuple[Any, ...], list[GraphQLError]]] = KeptPer(DOCUMENTS)

    def errors(
        self, schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...]
    ) -> list[GraphQLError]:
        kept = self._kept.get(document)
        if kept is not None and kept[0] is schema and kept[1] == rules:
            return kept[2]
        return self._kept.put(document, (schema, rules, validate_document(schema, document, rules)))[2]


class Document(SchemaExtension):
    """Parsing and validation of the document, both cached across requests, within the
    token, depth and alias limits (strawberry's limiters' rules, built once).

    One extension instead of five: each extension costs every request a few hooks.
    A document that does not parse is left to strawberry's own parse, which reports
    the error like any client error (with a code).
    """

    def __init__(self, limits: Limits, rules: tuple[type[ASTValidationRule], ...], validations: Validations) -> None:
        self.max_tokens = limits.max_tokens
        self.rules = rules
        self.validations = validations

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

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None:
            context.pre_execution_errors = self.validations.errors(
                context.schema._schema, context.graphql_document, context.validation_rules
            )
        yield


class Guards(SchemaExtension):
    """Before anything runs: the permission check, then the traversal cost bound."""

    def __init__(self, limits: Limits, costs: Costs) -> None:
        self.limits = limits
        self.costs = costs

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
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if context.operation_name:
                operations = [o for o in operations if o.name is not None and o.name.value == context.operation_name]
            schema = context.schema._schema
            try:
                cost = sum(self.costs.cost(schema, document, o, context.variables) for o in operations[:1])
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
    costs, validations = Costs(limits), Validations()
    return [ErrorCodes, lambda: Document(limits, rules, validations), lambda: Guards(limits, costs)]
