"""Validation of the normalized document against ``schemas/workflow.schema.json``.

Valid documents (the common case) take the fast path: a validator generated ahead of time
by fastjsonschema into ``_schema_compiled.py`` (regenerate it with
``python -m alfred_dsl.compiler._schema`` after editing the schema; a test checks it is current).
Only when that says "invalid" does ``jsonschema`` walk the document to report *every*
problem, each turned into a diagnostic in the user's words at the span it came from.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from .._diagnostics import Diagnostic, error
from .._resources import schema_path
from .._values import did_you_mean, value_type
from . import _schema_compiled
from ._document import Document, Path as DocPath, SpanIndex
from ._fixes import rename_fix

#: A ``jsonschema.exceptions.ValidationError`` (jsonschema is imported only on the slow path).
ValidationError = Any

__all__ = ["Problem", "compiled_source", "problems", "schema", "schema_text", "validate"]

#: The generated validator; None only while the compiled module is being regenerated.
_fast_validate = cast(Callable[[Any], Any] | None, getattr(_schema_compiled, "validate", None))

#: Friendly names people give to param types, mapped to alfred's.
_TYPE_ALIASES = {
    "integer": "int",
    "number": "float",
    "str": "string",
    "text": "string",
    "boolean": "bool",
    "array": "list",
    "dict": "map",
    "object": "map",
    "mapping": "map",
}

_NOUNS = {
    "agents": "agent",
    "workflows": "workflow",
    "stages": "stage",
    "params": "param",
    "uses": "`use` alias",
    "env": "environment variable",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One schema problem: its diagnostic and the path of the value that is at fault.

    The loader removes the values at these paths so that later passes only ever see data
    that satisfies the schema.
    """

    diagnostic: Diagnostic
    path: DocPath


def schema_text() -> str:
    """The schema, as shipped (``alfredc schema`` prints it)."""
    return schema_path().read_text(encoding="utf-8")


@functools.cache
def schema() -> dict[str, Any]:
    """The schema as data (shared: do not modify)."""
    return cast(dict[str, Any], json.loads(schema_text()))


def validate(doc: Document) -> list[Diagnostic]:
    """Every schema problem of ``doc``, placed at the DSL/YAML/JSON text it came from."""
    return [problem.diagnostic for problem in problems(doc.data, doc.spans)]


def problems(data: Any, spans: SpanIndex) -> list[Problem]:
    """Every schema problem of ``data`` (one per problem, in source order)."""
    if _fast_validate is not None:
        try:
            _fast_validate(data)
            return []
        except Exception:  # any failure of the fast path: let jsonschema explain
            pass
    found: list[Problem] = []
    seen: set[tuple[DocPath, str]] = set()
    for raw in _validator().iter_errors(_failing_parts(data)):
        for problem in _explain(raw, spans):
            key = (problem.path, problem.diagnostic.code)
            if key not in seen:
                seen.add(key)
                found.append(problem)
    return sorted(found, key=_order)


def _order(problem: Problem) -> tuple[str, int, int, tuple[tuple[int, int, str], ...]]:
    """Source order; the document path breaks ties (values without a span of their own)."""
    path = tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in problem.path)
    diagnostic = problem.diagnostic
    if diagnostic.primary is None:
        return (diagnostic.filename, 0, 0, path)
    span = diagnostic.primary.span
    return (span.file, span.start, span.end, path)


def _failing_parts(data: Any) -> Any:
    """``data`` without the stages that the fast path finds valid.

    jsonschema is some thirty times slower than the compiled validator; in a document of
    thousands of stages with one typo, it need only walk the stage with the typo. Stages
    are checked independently and keyed by name, so the paths of the rest do not change.
    """
    check_stage = cast(Callable[[Any], Any] | None, getattr(_schema_compiled, "validate____defs_stage", None))
    workflows = data.get("workflows") if isinstance(data, dict) else None
    if check_stage is None or not isinstance(workflows, dict):
        return data
    name_pattern = re.compile(schema()["$defs"]["identifier"]["pattern"])

    def fails(name: str, stage: Any) -> bool:
        if not name_pattern.match(name):
            return True
        try:
            check_stage(stage)
        except Exception:
            return True
        return False

    reduced: dict[str, Any] = {}
    for name, workflow in workflows.items():
        stages = workflow.get("stages") if isinstance(workflow, dict) else None
        if isinstance(stages, dict):
            kept = {key: stage for key, stage in stages.items() if fails(key, stage)}
            workflow = {**workflow, "stages": kept}
        reduced[name] = workflow
    return {**data, "workflows": reduced}


@functools.cache
def _validator() -> Any:
    jsonschema = importlib.import_module("jsonschema")  # only invalid documents pay for it
    return jsonschema.Draft202012Validator(schema())


# -- wording ------------------------------------------------------------------------------


_TYPE_NAMES = {
    "bool": "a boolean", "int": "an integer", "float": "a number", "string": "a string",
    "map": "a mapping", "list": "a list", "null": "nothing (null)",
}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES[value_type(value)]


_EXPECTED = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean (true or false)",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _shown(value: Any) -> str:
    """A short rendering of a value for a message."""
    if isinstance(value, dict | list) or value is None:
        return _type_name(value)
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + '..."'


def _describe(path: DocPath) -> str:
    """How a message names the value at ``path``: "stage `build`", "`retries`", ..."""
    if not path:
        return "the document"
    last = path[-1]
    if isinstance(last, int):
        parent = next((p for p in reversed(path[:-1]) if isinstance(p, str)), "list")
        return f"item {last + 1} of `{parent}`"
    if len(path) >= 2 and isinstance(path[-2], str):
        container = path[-2]
        block = len(path) == 2 or (len(path) == 4 and path[0] == "workflows")
        if block and container in _NOUNS and container != "env":
            return f"{_NOUNS[container]} `{last}`"
        if len(path) == 4 and path[0] == "workflows" and container == "on":
            return f"hook `on.{last}`"
    return f"`{last}`"


def _close(word: str, choices: Iterable[str]) -> str | None:
    return did_you_mean(word, [str(choice) for choice in choices])


def _choices(values: Iterable[Any]) -> str:
    return ", ".join(f"`{value}`" for value in values)


# -- mapping jsonschema errors to diagnostics ------------------------------------------------


def _explain(err: ValidationError, spans: SpanIndex) -> list[Problem]:
    path: DocPath = tuple(err.absolute_path)
    validator = str(err.validator)
    instance = err.instance
    subject = _describe(path)

    def problem(code: str, message: str, label: str, *, at: DocPath = path, key: bool = False,
                help: str | None = None, notes: Iterable[str] = (), fix_from: Iterable[str] = ()) -> Problem:
        span = spans.key(at) if key else spans.value(at)
        name = at[-1] if at else None
        fix = rename_fix(span, name, fix_from) if isinstance(name, str) and key else ()
        if not key and isinstance(instance, str):
            fix = rename_fix(span, instance, fix_from)
        return Problem(diagnostic=error(code, message, span, label, help=help, notes=notes, fix=fix), path=at)

    if "propertyNames" in err.absolute_schema_path:
        # The error's instance is the key itself; its path is that of the mapping.
        name = str(instance)
        noun = _NOUNS.get(str(path[-1]) if path else "", "key")
        allowed = "letters, digits, `_` and `-`"
        if noun == "environment variable":
            allowed = "letters, digits and `_`"
        return [problem("A301", f"`{name}` is not a valid {noun} name", "invalid name", at=(*path, name),
                        key=True, help=f"a name starts with a letter or `_` and holds {allowed}")]

    if validator == "additionalProperties" and isinstance(instance, dict):
        allowed_keys = list(err.schema.get("properties", {}))
        where = "at the top level" if not path else f"in {subject}"
        found = []
        for extra in instance:
            if extra in allowed_keys:
                continue
            found.append(problem(
                "A214", f"unknown attribute `{extra}` {where}", "unknown attribute",
                at=(*path, extra), key=True, help=_close(extra, allowed_keys), fix_from=allowed_keys,
                notes=[f"allowed here: {_choices(allowed_keys)}"],
            ))
        return found

    if validator == "required" and isinstance(instance, dict):
        missing = [name for name in err.validator_value if name not in instance]
        return [problem("A301", f"{subject} has no `{name}`", f"`{name}` missing", key=True,
                        help=_required_help(name)) for name in missing]

    if validator in ("anyOf", "oneOf"):
        return [_alternatives(err, path, subject, spans, problem)]

    if validator == "type":
        expected = err.validator_value
        types = expected if isinstance(expected, list) else [expected]
        names = [_EXPECTED.get(str(t), str(t)) for t in types]
        if not path:
            message = "the document must be a mapping with `agents` and `workflows`, found "
            message += _type_name(instance)
        else:
            message = f"{subject} must be {' or '.join(names)}, found {_type_name(instance)}"
        return [problem("A302", message, f"expected {names[0]}")]

    if validator == "enum":
        options = list(err.validator_value)
        hint = None
        fix_from: list[str] = []
        if isinstance(instance, str):
            alias = _TYPE_ALIASES.get(instance.lower()) if path and path[-1] == "type" else None
            hint = f"did you mean `{alias}`?" if alias in options else _close(instance, options)
            fix_from = [str(alias)] if alias in options else [str(o) for o in options]
        return [problem("A301", f"{subject} must be one of {_choices(options)}, found {_shown(instance)}",
                        "not one of the allowed values", help=hint, fix_from=fix_from)]

    if validator == "pattern":
        pattern = str(err.validator_value)
        if pattern == schema()["$defs"]["identifier"]["pattern"]:
            message = f"{subject} must be a name, found {_shown(instance)}"
            help = "a name starts with a letter or `_` and holds letters, digits, `_` and `-`"
        elif pattern == schema()["$defs"]["call"]["pattern"]:
            message = f'{subject} must be "module:function", found {_shown(instance)}'
            help = 'for example "myteam.agents:implement"'
        else:
            message = f"{subject} does not have the expected form, found {_shown(instance)}"
            help = f"it must match `{pattern}`"
        return [problem("A301", message, "invalid value", help=help)]

    if validator in ("minimum", "exclusiveMinimum"):
        return [problem("A301", f"{subject} must be at least {err.validator_value}, found {_shown(instance)}",
                        "too small")]

    if validator in ("minItems", "minLength"):
        return [problem("A301", f"{subject} must not be empty", "empty")]

    if validator == "uniqueItems" and isinstance(instance, list):
        for index, item in enumerate(instance):
            if item in instance[:index]:
                return [problem("A301", f"{subject} lists {_shown(item)} more than once", "listed again",
                                at=(*path, index), help="remove the repeated item")]

    return [problem("A301", f"{subject}: {err.message}", "does not match the schema")]


def _required_help(name: str) -> str | None:
    if name == "type":
        types = ["string", "int", "float", "bool", "duration", "list", "map"]
        return "give the param a type: " + _choices(types)
    if name == "template":
        return "name the workflow to include"
    if name == "run":
        return "give the command to run"
    return None


def _alternatives(err: ValidationError, path: DocPath, subject: str, spans: SpanIndex,
                  problem: Callable[..., Problem]) -> Problem:
    """An ``anyOf``: say what the value may be, rather than why each alternative failed."""
    defs = schema()["$defs"]
    instance = err.instance
    named = ("duration", "priority", "retries", "command")
    kind = next((name for name in named if err.schema == defs[name]), "")
    if not kind and path and path[-1] == "when":
        kind = "when"
    number = isinstance(instance, int | float) and not isinstance(instance, bool)
    if kind == "duration":
        if number and instance < 0:
            return problem("A304", f"{subject} must not be negative, found {_shown(instance)}",
                                         "negative duration")
        return problem(
            "A304",
            f'{subject} must be a duration such as "30s", "5m" or "1h30m", or a number of seconds; '
            f"found {_shown(instance)}",
            "not a duration",
            help="units are ms, s, m, h and d, largest first, with no spaces",
        )
    if kind == "priority":
        levels = defs["priority"]["anyOf"][0]["enum"]
        hint = _close(instance, levels) if isinstance(instance, str) else None
        return problem(
            "A305", f"{subject} must be {_choices(levels)} or an integer, found {_shown(instance)}",
            "not a priority", help=hint,
        )
    if kind == "retries":
        if number and isinstance(instance, int):
            return problem("A301", f"{subject} must be at least 0, found {instance}", "negative")
        return problem(
            "A302", f'{subject} must be an integer or an expression "${{...}}", found {_type_name(instance)}',
            "expected an integer",
        )
    if kind == "command":
        if instance in ("", []):
            return problem("A301", f"{subject} must not be empty", "empty")
        if isinstance(instance, list):
            for index, item in enumerate(instance):
                if not isinstance(item, str):
                    return problem(
                        "A302", f"item {index + 1} of {subject} must be a string, found {_type_name(item)}",
                        "expected a string", at=(*path, index),
                    )
        return problem(
            "A302",
            f"{subject} must be a string (a shell command line) or a list of strings (an argv), "
            f"found {_type_name(instance)}",
            "expected a string or a list",
        )
    if kind == "when":
        return problem(
            "A303", f'{subject} must be true, false or an expression "${{...}}", found {_shown(instance)}',
            "not a boolean",
        )
    best = importlib.import_module("jsonschema.exceptions").best_match(err.context)
    if best is None:
        return problem("A301", f"{subject}: {err.message}", "does not match the schema")
    return _explain(best, spans)[0]


# -- the compiled fast path ----------------------------------------------------------------

_FORMAT_LOCALS = re.compile(r'"((?:[^"\\{}]|\{[A-Za-z_][A-Za-z0-9_]*\})*)"\.format\(\*\*locals\(\)\)')
#: fastjsonschema checks `uniqueItems` through a hashable copy of each item (a nested call
#: per item); lists of strings (stage names: every `after`) need no copy.
_UNIQUE_ITEMS = re.compile(r"len\(set\(fn\((\w+)\) for \1 in (\w+)\)\)")
_COMPILED_PATH = Path(__file__).resolve().parent / "_schema_compiled.py"


def compiled_source() -> str:
    """The text of ``_schema_compiled.py`` for the current schema and fastjsonschema."""
    import fastjsonschema

    text = schema_text()
    definition = json.loads(text)
    # fastjsonschema knows drafts 4, 6 and 7; the schema uses only keywords that mean the
    # same in draft 7 and 2020-12 (``$defs`` is reached through plain JSON pointers).
    definition["$schema"] = "http://json-schema.org/draft-07/schema#"
    del definition["$id"]  # so that the entry point is named plain `validate`
    code = fastjsonschema.compile_to_code(definition, use_default=False, detailed_exceptions=False)
    # The generated code names each value for its error messages with
    # `"...{var}".format(**locals())`, evaluated eagerly on every call: as costly as the
    # checks themselves. The same string as an f-string is several times faster.
    code = _FORMAT_LOCALS.sub(r'f"\1"', code)
    code = _UNIQUE_ITEMS.sub(
        r"len(set(\2) if all(type(\1) is str for \1 in \2) else set(fn(\1) for \1 in \2))", code
    )
    code = _lighter_calls(code)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    header = (
        "# AUTOGENERATED by `python -m alfred_dsl.compiler._schema` from schemas/workflow.schema.json:"
        " do not edit.\n"
        f"# fastjsonschema {fastjsonschema.VERSION} code (the schema read as draft 7), so that alfred\n"
        "# pays no schema compile cost at start-up. tests/test_schema.py checks that it is current.\n"
        "# ruff: noqa\n"
        "# mypy: ignore-errors\n"
        "# fmt: off\n"
        f'SCHEMA_SHA256 = "{digest}"\n'
    )
    return header + code.rstrip("\n") + "\n"


#: A nested validator's call naming the value for its messages: `prefix + ".stages.{key}"`.
_NAMED_CALL = re.compile(r'custom_formats, \(name_prefix or "data"\) \+ f?"(?:[^"\\]|\\.)*"\)')
#: A compiled pattern looked up by its text in a dict at every use.
_PATTERN_USE = re.compile(r"REGEX_PATTERNS\[('(?:[^'\\]|\\.)*')\]\.search\(")
#: fastjsonschema's helper for `uniqueItems`, defined again inside a function at every call.
_UNIQUE_HELPER = re.compile(r"^[ ]+(def fn\(var\): return .*)\n", re.MULTILINE)
#: The walk of a mapping's values through a set of its keys and a lookup of each.
_KEYS_WALK = re.compile(
    r"^(?P<indent>[ ]+)(?P<map>\w+)_keys = set\((?P=map)\.keys\(\)\)\n"
    r"(?P=indent)for (?P=map)_key in (?P=map)_keys:\n"
    r"(?P=indent)    if (?P=map)_key not in \[\]:\n"
    r"(?P=indent)        (?P=map)_value = (?P=map)\.get\((?P=map)_key\)\n",
    re.MULTILINE,
)


def _lighter_calls(code: str) -> str:
    """The generated code with the same checks and less work per value (a 100,000-stage
    document calls the stage and name validators 100,000 times each):

    - a nested validator gets its caller's ``name_prefix`` instead of a new string per value:
      the compiled validator's messages are never shown (a failure sends the document to
      jsonschema, which explains every problem), so only valid/invalid matters;
    - each pattern's ``search`` is bound once at module level instead of a dict lookup per use;
    - the ``uniqueItems`` helper is defined once instead of at every call;
    - a mapping's values are read with ``items()`` instead of a set of its keys and a lookup.
    """
    code = _NAMED_CALL.sub("custom_formats, name_prefix)", code)
    patterns: dict[str, str] = {}

    def bound(match: re.Match[str]) -> str:
        name = patterns.setdefault(match.group(1), f"_search_{len(patterns)}")
        return f"{name}("

    code = _PATTERN_USE.sub(bound, code)
    helpers = set(_UNIQUE_HELPER.findall(code))
    if len(helpers) == 1:
        code = _UNIQUE_HELPER.sub("", code)
    else:  # a different helper than expected: leave them where they are
        helpers = set()

    def walk(match: re.Match[str]) -> str:
        indent, name = match.group("indent"), match.group("map")
        end = code.find("\ndef ", match.end())
        if re.search(rf"\b{name}_keys\b", code[match.end() : None if end == -1 else end]):
            return match.group(0)  # the key set is used again (additional properties)
        return f"{indent}for {name}_key, {name}_value in {name}.items():\n{indent}    if True:\n"

    code = _KEYS_WALK.sub(walk, code)
    for name, accepts in _quick_accepts(patterns).items():
        code = _guarded_calls(code, name, accepts)
    code = _ITEMS_LOOP.sub(_guarded_loop, code)
    code = _NAMES_LOOP.sub(r"\g<indent>if \g<map>_len != 0 and not (set(map(type, \g<map>)) <= {str}"
                           r" and all(map(\g<search>, \g<map>))):\n", code)
    definitions = "".join(f"{name} = REGEX_PATTERNS[{text}].search\n" for text, name in patterns.items())
    definitions += "".join(f"{helper}\n" for helper in helpers)
    anchor = "\nNoneType = type(None)\n"
    if anchor not in code:
        raise RuntimeError("fastjsonschema's generated code changed: no `NoneType` line")
    return code.replace(anchor, f"{anchor}{definitions}", 1)


#: A loop over a list whose only statement is a quick-accepted check of a text item.
_ITEMS_LOOP = re.compile(
    r"^(?P<indent>[ ]+)for (?P<list>\w+)_x, (?P=list)_item in enumerate\((?P=list)\):\n"
    r"(?P=indent)    (?P<check>if not \(type\((?P=list)_item\) is str"
    r" and (?P<search>_search_\d+)\((?P=list)_item\)\): "
    r"validate____defs_\w+\((?P=list)_item, custom_formats, name_prefix\))\n"
    r"(?!(?P=indent)[ ])",  # and nothing more in the loop
    re.MULTILINE,
)
#: The check of a mapping's keys (``propertyNames``), each quick-accepted as a text.
_NAMES_LOOP = re.compile(
    r"^(?P<indent>[ ]+)if (?P<map>\w+)_len != 0:\n"
    r"(?=(?P=indent)    (?P=map)_property_names = True\n"
    r"(?P=indent)    for (?P=map)_key in (?P=map):\n"
    r"(?P=indent)        try:\n"
    r"(?P=indent)            if not \(type\((?P=map)_key\) is str"
    r" and (?P<search>_search_\d+)\((?P=map)_key\)\): "
    r"validate____defs_\w+\((?P=map)_key, custom_formats, name_prefix\)\n"
    r"(?P=indent)        except \(JsonSchemaValueException, JsonSchemaValuesException\):\n"
    r"(?P=indent)            (?P=map)_property_names = False\n)",
    re.MULTILINE,
)


def _guarded_loop(match: re.Match[str]) -> str:
    """Skip the loop when every item is a text its quick test accepts (checked in C)."""
    indent, items, search = match["indent"], match["list"], match["search"]
    return (
        f"{indent}if not (set(map(type, {items})) <= {{str}} and all(map({search}, {items}))):\n"
        f"{indent}    for {items}_x, {items}_item in enumerate({items}):\n"
        f"{indent}        {match['check']}\n"
    )


def _guarded_calls(code: str, definition: str, accepts: str) -> str:
    """Each call of a definition's validator as ``if not (quick): validate(...)``: the
    validator runs only on a value the quick test does not accept (and then raises, or
    accepts it the long way)."""
    call = re.compile(
        rf"^(?P<indent>[ ]+)(?P<call>validate____defs_{definition}"
        r"\((?P<value>\w+), custom_formats, name_prefix\))$",
        re.MULTILINE,
    )
    return call.sub(lambda m: f"{m['indent']}if not ({accepts.format(v=m['value'])}): {m['call']}", code)


def _quick_accepts(patterns: dict[str, str]) -> dict[str, str]:
    """For the definitions checked once or more per stage, an expression of ``{v}`` true only
    for values the definition accepts (the common case), with the patterns bound in
    ``patterns`` (their ``repr`` -> name). A definition whose shape is not the one expected
    here gets none: it is checked by its validator alone, as generated."""
    defs = {name: _without_descriptions(value) for name, value in schema()["$defs"].items()}

    def text_matching(definition: Any) -> str | None:
        """``{"type": "string", "pattern": P}``: the bound search of P."""
        if not (isinstance(definition, dict) and definition.keys() == {"type", "pattern"}):
            return None
        pattern = definition["pattern"]
        if definition["type"] != "string" or not isinstance(pattern, str):
            return None
        return patterns.get(repr(pattern))

    found: dict[str, str] = {}
    if (bound := text_matching(defs.get("identifier"))) is not None:
        found["identifier"] = f"type({{v}}) is str and {bound}({{v}})"
    names = defs.get("names")
    if (
        isinstance(names, dict)
        and names.keys() == {"type", "uniqueItems", "items"}
        and (names["type"], names["uniqueItems"]) == ("array", True)
        and (bound := text_matching(names["items"])) is not None
    ):
        found["names"] = (
            f"type({{v}}) is list and set(map(type, {{v}})) <= {{{{str}}}}"
            f" and len(set({{v}})) == len({{v}}) and all(map({bound}, {{v}}))"
        )
    duration = defs.get("duration")
    alternatives = duration.get("anyOf") if isinstance(duration, dict) and len(duration) == 1 else None
    # Any one alternative accepts: a text duration is the common one.
    if isinstance(alternatives, list) and alternatives and (bound := text_matching(alternatives[0])):
        found["duration"] = f"type({{v}}) is str and {bound}({{v}})"
    return found


def _without_descriptions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_descriptions(v) for k, v in value.items() if k != "description"}
    if isinstance(value, list):
        return [_without_descriptions(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    """Regenerate ``_schema_compiled.py`` (``--check``: exit 1 if it is out of date)."""
    args = sys.argv[1:] if argv is None else argv
    wanted = compiled_source()
    current = _COMPILED_PATH.read_text(encoding="utf-8") if _COMPILED_PATH.exists() else ""
    if "--check" in args:
        return 0 if current == wanted else 1
    if current != wanted:
        _COMPILED_PATH.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
