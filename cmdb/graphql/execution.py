"""Completing plain objects (in lists, or one by one) without graphql-core's per-field machinery.

graphql-core completes every field of every object the same general way: it
builds a ``GraphQLResolveInfo`` and a ``Path``, looks up the resolver, checks
for awaitables, then recurses through ``complete_value`` by return type. That
costs about 5 µs a field; a walk of 100 CIs with the path to each is ~1,500
fields, and that general machinery was most of such a request's CPU.

``PlainListExecutionContext`` keeps graphql-core for everything, except when a
list's items (or a single object) select only *plain* fields, all the way down:

- fields without a resolver (strawberry reads the attribute), and sync
  resolvers that take nothing but ``self`` (``Reached.path``, ``CI.tags``);
- no arguments, no ``@defer``/``@stream``, no middleware or resolve hooks,
  no field extensions, no ``info``;
- leaves (scalars and enums), lists, objects and interfaces of such fields.

Such a list (or object) is completed by a plan compiled once per operation and field
(per runtime type for interfaces) and kept across requests, or once per request when
a directive's argument is a variable (``@include(if: $yes)``: then the fields depend
on the variables). Plans come from graphql-core's own field collection, so
fragments, ``@skip``/``@include``, aliases and ``__typename`` mean what they
always mean. Values are coerced by the types' own ``coerce_output_value``,
runtime types come from the interface's own ``resolve_type`` and checked with
the object's ``is_type_of``. Anything irregular in the data (a null in a
non-null field, a failing coercion, a resolver that raises) abandons the plan
for that list and hands it back to graphql-core, which reports it exactly as
it always does: plain fields have no side effects, so computing them again is
harmless. The answer is the same either way; ``tests/graphql/test_execution.py``
compares the two on the queries that matter.
"""

from __future__ import annotations

import keyword
import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from weakref import WeakKeyDictionary

from graphql import (
    ExecutionResult,
    GraphQLAbstractType,
    GraphQLBoolean,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLString,
    Undefined,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.language import FragmentDefinitionNode, FragmentSpreadNode, Node, OperationDefinitionNode, VariableNode
from graphql.pyutils import Path
from graphql.type.scalars import GRAPHQL_MAX_INT, GRAPHQL_MIN_INT
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE
from strawberry.types.field import StrawberryField

from cmdb.graphql.kept import DOCUMENTS, KeptPer

__all__ = ["PlainListExecutionContext"]

log = logging.getLogger(__name__)

ResolveInfo = GraphQLResolveInfo[Any]
Memo = dict[int, tuple[Any, Any, dict[str, Any]]]
"""What the objects met so far in one completion gave, by their ids: (object, plan, answer)."""
Complete = Callable[[Any, ResolveInfo, Memo], Any]
"""Completes one value of a plan's type; raises ``_Irregular`` to hand the list back."""

@dataclass(slots=True)
class _Book:
    """The plans of one operation, kept across requests: field collection only reads the
    document (when no directive's argument is a variable), so neither do the plans."""

    fragments: list[FragmentDefinitionNode]  # with the operation, keeps alive the nodes whose ids key the plans
    plans: dict[tuple[int, tuple[int, ...]], Complete | None] = field(default_factory=dict)


_BOOKS: WeakKeyDictionary[GraphQLSchema, KeptPer[OperationDefinitionNode, _Book]] = WeakKeyDictionary()


_HANDED_BACK = object()
"""What ``_by_plan`` answers for a value that graphql-core must complete."""


class _Irregular(Exception):
    """The plan met something graphql-core must report (or a type it does not cover)."""


def _reader(field: GraphQLField) -> str | Callable[[Any], Any] | None:
    """How a plain field reads its value from its parent object: the name of the attribute,
    or a function of the object; None if the field is not plain."""
    if field.args:
        return None
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or definition.extensions:
        return None
    if getattr(definition, "permission_classes", None):
        return None
    resolver = definition.base_resolver
    if resolver is None:
        if definition.default_resolver is not getattr or not getattr(field.resolve, "_is_default", False):
            return None
        name = definition.python_name
        return name if name.isidentifier() and not keyword.iskeyword(name) else operator.attrgetter(name)
    if (
        resolver.is_async
        or resolver.arguments
        or resolver.self_parameter is None
        or resolver.root_parameter is not None
        or resolver.info_parameter is not None
    ):
        return None
    function = resolver.wrapped_func
    return function if callable(function) else None


class PlainListExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution, with plain objects (and lists of them) completed by compiled plans."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One plan per (item type, field group) for the request; None: not plain.
        self._plans: dict[tuple[int, int], tuple[FieldDetailsList, Complete | None]] = {}
        manager = self.middleware_manager
        self._enabled = manager is None or not manager.middlewares
        self._book = self._shared_book() if self._enabled else None

    def _shared_book(self) -> _Book | None:
        """The plans this operation shares with earlier requests (None: they depend on variables)."""
        books = _BOOKS.get(self.schema)
        if books is None:
            books = _BOOKS[self.schema] = KeptPer(DOCUMENTS)
        operation = self.operation
        book = books.get(operation)
        if book is not None:
            return book
        fragments = [details.definition for details in self.fragments.values()]
        if _varies([operation, *fragments]):
            return None
        return books.put(operation, _Book(fragments))

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: ResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if (
            self._enabled
            and isinstance(result, (list, tuple))
            and self.get_stream_usage(field_details_list, path) is None
        ):
            completed = self._by_plan(return_type, field_details_list, info, result)
            if completed is not _HANDED_BACK:
                return completed
        return super().complete_list_value(return_type, field_details_list, info, path, result, position_context)

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: ResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        # A single object (a lookup's CI) whose selections are plain, by the same plans.
        if self._enabled:
            completed = self._by_plan(return_type, field_details_list, info, result)
            if completed is not _HANDED_BACK:
                return completed
        return super().complete_object_value(return_type, field_details_list, info, path, result, position_context)

    def _by_plan(
        self, type_: GraphQLOutputType, field_details_list: FieldDetailsList, info: ResolveInfo, result: Any
    ) -> Any:
        """``result`` completed by its plan, or ``_HANDED_BACK`` when it has none or the data is
        irregular: graphql-core completes it then, and reports what it finds."""
        complete = self._plan(type_, field_details_list)
        if complete is not None:
            try:
                return complete(result, info, {})
            except Exception as exc:  # noqa: BLE001 - graphql-core completes it again and reports it
                log.debug("%s.%s handed back to graphql-core: %r", info.parent_type, info.field_name, exc)
        return _HANDED_BACK

    def build_response(self, data: dict[str, Any] | None) -> Any:
        # The request's own plans keep its field groups: let them go with the request.
        self._plans.clear()
        response = super().build_response(data)
        if isinstance(response, ExecutionResult):
            # A whole answer: nothing runs after it. graphql-core's helpers for resolvers hold
            # this context's own methods, a cycle that only the garbage collector frees, with
            # all the request holds (the collector's passes were pauses of milliseconds).
            del self.async_helpers
        return response

    # --- compiling plans ----------------------------------------------------------

    def _plan(self, type_: GraphQLOutputType, field_details_list: FieldDetailsList) -> Complete | None:
        book = self._book
        if book is not None:
            shared_key = (id(type_), tuple([id(details.node) for details in field_details_list]))
            if shared_key in book.plans:
                return book.plans[shared_key]
            shared = book.plans[shared_key] = self._compile(type_, field_details_list)
            return shared
        key = (id(type_), id(field_details_list))
        cached = self._plans.get(key)
        if cached is not None:
            return cached[1]
        plan = self._compile(type_, field_details_list)
        # The field group is kept alive with its plan, so that its id is not reused.
        self._plans[key] = (field_details_list, plan)
        return plan

    def _compile(
        self, type_: GraphQLOutputType, field_details_list: FieldDetailsList, required: bool = False, lists: int = 0
    ) -> Complete | None:
        """The completer of values of ``type_`` (``required``: a null is irregular), inside
        ``lists`` lists of the plan."""
        if is_non_null_type(type_):
            return self._compile(type_.of_type, field_details_list, True, lists)
        if is_list_type(type_):
            return self._list_and_items(type_, field_details_list, required, lists)[0]
        if isinstance(type_, CustomGraphQLEnumType):
            return _enum(type_, required)
        if is_leaf_type(type_):
            return _leaf(type_, required)
        if is_abstract_type(type_):
            return self._abstract(type_, field_details_list, required, lists)
        if is_object_type(type_):
            return self._object(type_, field_details_list, required, lists)
        return None

    def _list_and_items(
        self, type_: GraphQLList[GraphQLOutputType], field_details_list: FieldDetailsList, required: bool, lists: int
    ) -> tuple[Complete | None, Complete | None]:
        """The completer of a list of ``type_``, and the completer of its items."""
        item = self._compile(type_.of_type, field_details_list, False, lists + 1)
        return _list(item, required), item

    def _object(
        self, type_: GraphQLObjectType, field_details_list: FieldDetailsList, required: bool = False, lists: int = 0
    ) -> Complete | None:
        if any(details.defer_usage is not None for details in field_details_list):
            return None
        grouped, new_defer_usages, _ = self.collect_subfields(type_, field_details_list)
        if new_defer_usages:
            return None
        entries: list[_Entry] = []
        for response_key, group in grouped.items():
            if any(d.defer_usage is not None or d.fragment_variable_values is not None for d in group):
                return None
            name = group[0].node.name.value
            if name == "__typename":
                entries.append(_Entry(response_key, None, type_.name, None, False, None, None))
                continue
            if name.startswith("__") or any(d.node.arguments for d in group):
                return None
            field = type_.fields.get(name)
            if field is None:
                return None
            reader = _reader(field)
            if reader is None:
                return None
            nullable = not is_non_null_type(field.type)
            named = field.type.of_type if is_non_null_type(field.type) else field.type
            if is_list_type(named):  # the items' completer too, for the object's own loop
                complete, item = self._list_and_items(named, group, not nullable, lists)
            else:
                complete, item = self._compile(field.type, group, False, lists), None
            if complete is None:
                return None
            enum = (_enum_names(named), named.wrapped_cls) if isinstance(named, CustomGraphQLEnumType) else None
            entries.append(_Entry(response_key, reader, complete, _own_answer(field.type), nullable, item, enum))
        definition = (type_.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        origin = definition.origin if isinstance(definition, StrawberryObjectDefinition) else None
        # Objects in the lists of a list's items (a walk's paths) are met again: paths share
        # their edges. Others are met once, and are not worth remembering.
        return _object_completer(type_.name, entries, type_.is_type_of, origin, required, memo=lists >= 2)

    def _abstract(
        self, type_: GraphQLAbstractType, field_details_list: FieldDetailsList, required: bool = False, lists: int = 0
    ) -> Complete | None:
        resolve_type = type_.resolve_type
        if resolve_type is None:
            return None
        # every object type a value may turn out to be, compiled now (a plan refers to no
        # request); the object's plan checks the value, as graphql-core's is_type_of would
        plans = {
            runtime.name: self._object(runtime, field_details_list, False, lists)
            for runtime in self.schema.get_possible_types(type_)
        }
        by_name = {name: plan for name, plan in plans.items() if plan is not None}

        def complete_abstract(value: Any, info: ResolveInfo, memo: Memo) -> Any:
            if value is None or value is Undefined:
                if required:
                    raise _Irregular
                return None
            name = resolve_type(value, info, type_)
            complete = by_name.get(name) if name.__class__ is str else None
            if complete is None:  # not plain, not a type, or an awaitable: graphql-core's to complete
                raise _Irregular
            return complete(value, info, memo)

        return complete_abstract


def _varies(nodes: list[Node]) -> bool:
    """Whether the fields collected below ``nodes`` may depend on variables: a directive
    with a variable argument (``@include(if: $yes)``) or a fragment given arguments."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        for directive in getattr(node, "directives", None) or ():
            if any(isinstance(argument.value, VariableNode) for argument in directive.arguments):
                return True
        if isinstance(node, FragmentSpreadNode) and getattr(node, "arguments", None):
            return True
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return False


_OWN_ANSWERS: dict[GraphQLNamedType, str] = {
    GraphQLString: "{v}.__class__ is str",
    GraphQLID: "{v}.__class__ is str",
    GraphQLBoolean: "{v}.__class__ is bool",
    GraphQLInt: f"({{v}}.__class__ is int and {GRAPHQL_MIN_INT} <= {{v}} <= {GRAPHQL_MAX_INT})",  # within 32 bits
}
"""Per scalar, a test (in Python, over ``{v}``) of the values its coercion returns unchanged
(graphql-core's own rules): each is its own answer, without a call."""


def _own_answer(type_: GraphQLOutputType) -> str | None:
    """The test of values that are their own answer in a field of ``type_``, if any."""
    if is_non_null_type(type_):
        type_ = type_.of_type
    return _OWN_ANSWERS.get(type_) if isinstance(type_, GraphQLNamedType) else None


def _on_null(required: bool) -> str:
    """The lines of a generated completer that answer a null (``required``: irregular)."""
    return f"    if value is None or value is Undefined:\n        {'raise Irregular' if required else 'return None'}\n"


def _compiled(source: str, type_name: str, names: dict[str, Any]) -> Complete:
    """The completer ``source`` defines (``complete``), with ``names`` as its globals; named
    by its type in profiles. Sources are made here, from no client text."""
    names.update(Undefined=Undefined, Irregular=_Irregular)
    exec(compile(source, f"<plan of {type_name}>", "exec"), names)  # noqa: S102 - see above
    complete: Complete = names["complete"]
    return complete


@dataclass(frozen=True, slots=True)
class _Entry:
    """One field of an object's plan."""

    key: str  # the response key (an alias is the client's text: never part of generated source)
    reader: str | Callable[[Any], Any] | None  # the attribute's name or a function; None: __typename
    complete: Complete | str  # the completer of its values (for __typename: the type's name)
    own_answer: str | None  # see ``_own_answer``
    nullable: bool  # a null is its own answer
    item: Complete | None  # for a list: the completer of its items
    enum: tuple[dict[Any, str], Any] | None  # for an enum: its names by value, and its Python class


def _object_completer(
    type_name: str,
    entries: list[_Entry],
    is_type_of: Callable[..., Any] | None,
    origin: type | None,
    required: bool,
    *,
    memo: bool,
) -> Complete:
    """The completer of one object type's plan, as Python source compiled once per plan: its
    fields unrolled (no loop over the plan), plain attributes read by name, and values that
    are their own answer kept without a call. The source holds only names it makes itself
    and attribute names from the schema's Python classes (identifiers, checked by
    ``_reader``); every other value, response keys included, is passed in by name."""
    names: dict[str, Any] = {"TYPE_CAST": TYPE_CAST_ATTRIBUTE, "is_type_of": is_type_of, "origin": origin}
    reads: list[str] = []
    items: list[str] = []
    for n, entry in enumerate(entries):
        names[f"k{n}"] = entry.key
        if entry.reader is None:  # __typename
            names[f"t{n}"] = entry.complete
            items.append(f"k{n}: t{n}")
            continue
        if isinstance(entry.reader, str):
            reads.append(f"    v{n} = value.{entry.reader}")
        else:
            names[f"r{n}"] = entry.reader
            reads.append(f"    v{n} = r{n}(value)")
        names[f"c{n}"] = entry.complete
        v = f"v{n}"
        call = f"c{n}({v}, info, memo)"
        if entry.item is not None:  # a list's items completed here (no call for the list)
            names[f"i{n}"] = entry.item
            call = f"([i{n}(x, info, memo) for x in {v}] if {v}.__class__ is list else {call})"
        elif entry.enum is not None:  # a member's name looked up here; anything else by the call
            names[f"e{n}"], names[f"m{n}"] = entry.enum
            call = f"((e{n}.get({v}._value_) if {v}.__class__ is m{n} else None) or {call})"
        own = entry.own_answer.format(v=v) if entry.own_answer else None
        if entry.nullable:
            own = f"{v} is None or {own}" if own else f"{v} is None"
        items.append(f"k{n}: {v} if {own} else {call}" if own else f"k{n}: {call}")
    if is_type_of is None:
        checks = "    if value.__class__ is not origin and isinstance(value, Exception):\n        raise Irregular\n"
    else:
        # an instance of the type's own class, not cast to another, is of the type (is_type_of's
        # rule), and no exception; other values are checked as graphql-core would
        checks = (
            "    if value.__class__ is not origin or getattr(value, TYPE_CAST, None) is not None:\n"
            "        if isinstance(value, Exception) or is_type_of(value, info) is not True:\n"
            "            raise Irregular\n"
        )
    # With ``memo``, an object met again by this plan is answered by what it gave the first
    # time: plain fields compute the same answer. The memo keeps the object, so that its id
    # is not reused while the completion lasts; an object met by two plans is kept for the
    # later one.
    source = (
        "def complete(value, info, memo):\n"
        f"{_on_null(required)}"
        + (
            "    again = memo.get(id(value))\n"
            "    if again is not None and again[0] is value and again[1] is complete:\n"
            "        return again[2]\n"
            if memo
            else ""
        )
        + f"{checks}"
        + "".join(f"{read}\n" for read in reads)
        + f"    completed = {{{', '.join(items)}}}\n"
        + ("    memo[id(value)] = (value, complete, completed)\n" if memo else "")
        + "    return completed\n"
    )
    return _compiled(source, type_name, names)


def _list(inner: Complete | None, required: bool) -> Complete | None:
    if inner is None:
        return None

    def complete_list(value: Any, info: ResolveInfo, memo: Memo) -> Any:
        if value is None or value is Undefined:
            if required:
                raise _Irregular
            return None
        if not isinstance(value, (list, tuple)):
            raise _Irregular
        return [inner(item, info, memo) for item in value]

    return complete_list


def _leaf(type_: GraphQLLeafType, required: bool) -> Complete:
    own = _own_answer(type_)
    source = (
        "def complete(value, info, memo):\n"
        + (f"    if {own.format(v='value')}:\n        return value\n" if own else "")
        + _on_null(required)
        + "    coerced = coerce(value)\n"
        "    if coerced is None or coerced is Undefined:\n"
        "        raise Irregular\n"
        "    return coerced\n"
    )
    return _compiled(source, type_.name, {"coerce": type_.coerce_output_value})


_ENUM_NAMES: dict[CustomGraphQLEnumType, dict[Any, str]] = {}
"""Per enum type of a schema: each Python member's GraphQL name, by the member's value (an
Enum's own hash is a Python call, its value's is not; schemas live as long as the process)."""


def _enum_names(type_: CustomGraphQLEnumType) -> dict[Any, str]:
    """A strawberry enum's GraphQL names by its Python members' values, not by strawberry's
    scan of every value (the same name: the value whose ``value`` equals the member's)."""
    names = _ENUM_NAMES.get(type_)
    if names is None:
        names = {}
        if isinstance(type_.wrapped_cls, type) and issubclass(type_.wrapped_cls, Enum):
            for member in type_.wrapped_cls:
                for name, value in type_.values.items():
                    if member.value == value.value:
                        try:
                            names[member._value_] = name
                        except TypeError:  # an unhashable value: that member by strawberry's scan
                            pass
                        break
        _ENUM_NAMES[type_] = names
    return names


def _enum(type_: CustomGraphQLEnumType, required: bool) -> Complete:
    names = _enum_names(type_)
    slow = _leaf(type_, required)
    members = type_.wrapped_cls

    def complete_enum(value: Any, info: ResolveInfo, memo: Memo) -> Any:
        if value.__class__ is members:
            name = names.get(value._value_)
            if name is not None:
                return name
        return slow(value, info, memo)

    return complete_enum
