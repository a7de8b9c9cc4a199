"""The plan as JSON (spec section 5) and as a text table with the critical path marked."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from operator import attrgetter
from typing import Any, Generic, TypeVar

from .._values import duration_text
from ..compiler._plan import (
    NO_STAGE_EXTRAS,
    STAGE_EXTRA_FIELDS,
    Plan,
    PlanStage,
    json_number,
    plan_json,
    spend_json,
    stage_extras_json,
    stage_json,
)

__all__ = [
    "dump", "dump_plan", "dumps", "duration_text", "json_pieces", "number", "plan_to_json", "plan_to_text",
]

_BOLD_RED = "\x1b[1;31m"
_DIM = "\x1b[2m"
_BOLD = "\x1b[1m"
_RESET = "\x1b[0m"


def number(value: float) -> int | float:
    """Seconds as JSON wants them: ``1200`` rather than ``1200.0`` when whole."""
    return json_number(value)


def _stage_agent(stage: PlanStage) -> str | None:
    return stage.agents[0] if stage.agents else None


def _encoder() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False)`` for many values (a plan of 100,000 stages
    is 100,000 lines): one C encoder for all of them, where ``json.dumps`` makes a new one
    per call. Made per :func:`dumps` call, so that its record of the containers being
    encoded (circular references) starts empty. Where the C encoder is missing, or answers
    differently from ``json.dumps`` (another Python's signature), ``JSONEncoder.encode``."""
    plain = json.JSONEncoder(ensure_ascii=False)
    if c_make_encoder is None:
        return plain.encode
    try:
        chunks = c_make_encoder({}, plain.default, encode_basestring, None, ": ", ", ", False, False, True)
    except TypeError:
        return plain.encode

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    sample = {"a": [1, 2.5, "é\n", None, True], "b": {"c": float("inf")}}
    try:
        if encode(sample) == json.dumps(sample, ensure_ascii=False):
            return encode
    except Exception:  # any other behaviour: the plain encoder
        pass
    return plain.encode


def dumps(data: Mapping[str, Any]) -> str:
    """JSON text of a top-level object: one key per line, and one line per element of a list
    of objects (a stage, a node, an edge).

    Readable and diff-friendly, and every piece goes through the C encoder: ``indent=``
    falls back to the pure-Python encoder, three times slower on a 10,000-stage plan.
    """
    return "".join(json_pieces(data))


def dump(data: Mapping[str, Any], write: Callable[[str], object], chunk: int = 1 << 20) -> None:
    """:func:`dumps` written in pieces of about ``chunk`` characters: a 100,000-stage plan is
    tens of MB of text, which need not exist whole (nor its copies while it is joined)."""
    _write_in_chunks(json_pieces(data), write, chunk)


def dump_plan(plan: Plan, write: Callable[[str], object], chunk: int = 1 << 20) -> None:
    """``dump(plan_to_json(plan), write, chunk)``, the same text, without making the plan's
    JSON data first: the stages' lines are written from the stages themselves, a few
    thousand at a time (see :class:`_StageLines`). ``alfredc plan --format json``."""
    _write_in_chunks(json_pieces(plan_json(plan, _StageLines(plan.stages))), write, chunk)


def _write_in_chunks(pieces: Iterable[str], write: Callable[[str], object], chunk: int) -> None:
    pending: list[str] = []
    size = 0
    for piece in pieces:
        pending.append(piece)
        size += len(piece)
        if size >= chunk:
            write("".join(pending))
            pending.clear()
            size = 0
    if pending:
        write("".join(pending))


def json_pieces(data: Mapping[str, Any]) -> Iterator[str]:
    """The text of :func:`dumps`, in order, a line (or a block of lines) at a time. A
    :class:`_StageLines` value (:func:`dump_plan`'s) is written as the list of objects that
    it stands for."""
    if not data:
        yield "{}\n"
        return
    _encode = _encoder()
    last = len(data) - 1
    yield "{\n"
    for number_, (key, value) in enumerate(data.items()):
        comma = "," if number_ < last else ""
        end = "\n" if number_ < last else "\n}\n"
        name = _encode(key)
        if type(value) is _StageLines and value.stages:
            yield f"  {name}: [\n"
            yield from value.blocks(_encode)
            yield f"  ]{comma}{end}"
        elif type(value) is _StageLines:
            yield f"  {name}: []{comma}{end}"
        elif isinstance(value, list) and value and _all_mappings(value):
            yield f"  {name}: [\n"
            final = len(value) - 1
            for index, item in enumerate(value):
                yield f"    {_encode(item)}{',' if index < final else ''}\n"
            yield f"  ]{comma}{end}"
        else:
            yield f"  {name}: {_encode(value)}{comma}{end}"


_Key = TypeVar("_Key")


class _Texts(dict[_Key, str], Generic[_Key]):
    """The JSON text of values met again and again (the same agents, durations, layers),
    made once each by ``make``."""

    def __init__(self, make: Callable[[_Key], str]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: _Key) -> str:
        text = self[key] = self._make(key)
        return text


class _NumberTexts(dict[float, str]):
    """The text of ``json_number(value)`` by value, as the JSON encoder writes it. Values
    that compare equal have the same text (``1`` and ``1.0`` are ``1``, ``0.0`` and ``-0.0``
    are ``0``), so that one entry serves all of them."""

    def __init__(self, encode: Callable[[Any], str]) -> None:
        super().__init__()
        self._encode = encode

    def __missing__(self, value: float) -> str:
        as_float = float(value)
        if as_float.is_integer():
            text = repr(int(as_float))
        elif as_float - as_float == 0:  # finite: the encoder writes repr(); else "NaN"...
            text = repr(as_float)
        else:
            text = self._encode(as_float)
        self[value] = text
        return text


_extras_of = attrgetter(*STAGE_EXTRA_FIELDS)
#: Number texts kept from block to block: enough for the durations that recur (estimates,
#: the starts of a layer) without holding every distinct figure of a large plan.
_KEPT_NUMBERS = 1 << 12
_BOOLS = {True: "true", False: "false"}


class _StageLines:
    """What stands for a plan's ``stages`` in :func:`dump_plan`: their lines, as
    :func:`json_pieces` writes a list of objects (``    {...},``), made straight from the
    stages in blocks rather than from a dict per stage (half the time of a 100,000-stage
    plan's JSON). The text is the same, which tests/test_plan.py checks on plans with every
    kind of stage. A stage with anything unusual (another type than the plan's own where a
    value is encoded here) is written from :func:`stage_json` as :func:`json_pieces` would."""

    __slots__ = ("stages",)

    def __init__(self, stages: Sequence[PlanStage]) -> None:
        self.stages = stages

    def blocks(self, encode: Callable[[Any], str], size: int = 2048) -> Iterator[str]:
        """The lines of ``size`` stages at a time, each but the last ending with a comma."""
        string = encode_basestring
        numbers = _NumberTexts(encode)
        ints: _Texts[int] = _Texts(encode)  # only for values of type int (True is not 1 here)
        agent_texts: _Texts[tuple[str, ...]] = _Texts(lambda agents: encode(agents[0] if agents else None))
        lists: _Texts[tuple[str, ...]] = _Texts(lambda names: encode(list(names)))
        no_extras = NO_STAGE_EXTRAS
        stages = self.stages
        for start in range(0, len(stages), size):
            if len(numbers) > _KEPT_NUMBERS:
                numbers.clear()
            lines = []
            for stage in stages[start:start + size]:
                try:
                    extras = _extras_of(stage)
                    tail = ""
                    if extras != no_extras and (found := stage_extras_json(stage)):
                        tail = ", " + encode(found)[1:-1]
                    else:
                        # The defaults (maybe other objects: an empty map of its own): the next
                        # stage is compared with these, most likely its own too (a tuple
                        # compares identical items without asking them).
                        no_extras = extras
                    agents = stage.agents
                    layer = stage.layer
                    layer_text = ints[layer] if type(layer) is int else encode(layer)
                    priority = stage.priority
                    priority_text = ints[priority] if type(priority) is int else encode(priority)
                    critical = stage.critical
                    critical_text = _BOOLS[critical] if type(critical) is bool else encode(critical)
                    when = stage.when
                    when_text = _BOOLS[when] if type(when) is bool else encode(when)
                    lines.append(
                        f'{{"name": {string(stage.name)}, "agent": {agent_texts[agents]}, '
                        f'"after": [{", ".join(map(string, stage.after))}], '
                        f'"estimate_s": {numbers[stage.estimate_s]}, '
                        f'"earliest_start_s": {numbers[stage.earliest_start_s]}, '
                        f'"earliest_finish_s": {numbers[stage.earliest_finish_s]}, '
                        f'"latest_start_s": {numbers[stage.latest_start_s]}, '
                        f'"latest_finish_s": {numbers[stage.latest_finish_s]}, '
                        f'"slack_s": {numbers[stage.slack_s]}, '
                        f'"layer": {layer_text}, "critical": {critical_text}, '
                        f'"agents": {lists[agents]}, "group": {lists[stage.group]}, '
                        f'"priority": {priority_text}, "when": {when_text}{tail}}}'
                    )
                except (TypeError, ValueError):  # a value of another type: as json_pieces does it
                    lines.append(encode(stage_json(stage)))
            yield "    " + ",\n    ".join(lines) + (",\n" if start + size < len(stages) else "\n")


def _all_mappings(items: list[Any]) -> bool:
    if set(map(type, items)) == {dict}:  # the common case, without a call per item
        return True
    return all(isinstance(item, Mapping) for item in items)


def _spend_text(plan: Plan) -> list[str]:
    data = spend_json(plan)
    if not data:
        return []
    from ..compiler._budget import format_amount

    parts = []
    for unit, total in data["worst_case"].items():
        limit = data["budget"].get(unit)
        text = f"{format_amount(unit, total)}"
        if limit is not None:
            shown = format_amount(unit, limit).split(" ", 1)[1]
            text += f" (budget {shown}{', EXCEEDED' if total > limit else ''})"
        parts.append(text)
    return [f"worst case: {'; '.join(parts)}"]


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan in the JSON shape of spec section 5 (plus ``source`` and ``params``): :meth:`Plan.to_json`."""
    return plan.to_json()


_HEADERS = ("", "stage", "agent", "after", "estimate", "start", "finish", "slack", "layer")
_RIGHT = {4, 5, 6, 7, 8}  # numeric columns are right-aligned


def _row(stage: PlanStage) -> tuple[str, ...]:
    agent = ", ".join(stage.agents) if len(stage.agents) > 1 else (_stage_agent(stage) or "-")
    return (
        "*" if stage.critical else "",
        stage.name,
        agent,
        ", ".join(stage.after) or "-",
        duration_text(stage.estimate_s),
        duration_text(stage.earliest_start_s),
        duration_text(stage.earliest_finish_s),
        duration_text(stage.slack_s),
        str(stage.layer),
    )


def _layout(cells: Sequence[str], widths: Sequence[int]) -> str:
    parts = [
        cell.rjust(width) if column in _RIGHT else cell.ljust(width)
        for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
    ]
    return "  ".join(parts).rstrip()


def plan_to_text(plan: Plan, *, colour: bool) -> str:
    """A table of the stages (``*`` marks critical ones), then the critical path and duration.

    ``start`` and ``finish`` are the earliest ones; ``slack`` is how long a stage may slip
    without delaying the run. ANSI colour only when ``colour`` is true.
    """
    rows = [_row(stage) for stage in plan.stages]
    widths = [max(len(cells[i]) for cells in [_HEADERS, *rows]) for i in range(len(_HEADERS))]
    lines = [f"workflow {plan.workflow}" + (f": {plan.description}" if plan.description else ""), ""]
    header = _layout(_HEADERS, widths)
    lines.append(f"{_BOLD}{header}{_RESET}" if colour else header)
    for stage, cells in zip(plan.stages, rows, strict=True):
        line = _layout(cells, widths)
        if colour and stage.critical:
            line = f"{_BOLD_RED}{line}{_RESET}"
        lines.append(line)
    if not plan.stages:
        lines.append(f"{_DIM}(no stages){_RESET}" if colour else "(no stages)")
    lines.append("")
    path = " -> ".join(plan.critical_path) or "-"
    lines.append(f"critical path: {path}")
    lines.append(f"duration: {duration_text(plan.duration_s)} ({number(plan.duration_s)} s)")
    lines.append(f"layers: {len(plan.layers)}, max parallelism: {plan.max_parallelism}")
    if colour:
        lines[-3] = f"{_BOLD}{lines[-3]}{_RESET}"
    lines.extend(_spend_text(plan))
    lines.extend(_dynamic_lines(plan))
    legend = "* critical (zero slack); start/finish: earliest, from the start of the run"
    lines.append(f"{_DIM}{legend}{_RESET}" if colour else legend)
    lines.extend(_resource_lines(plan))
    return "\n".join(lines) + "\n"


def _dynamic_lines(plan: Plan) -> list[str]:
    """The ``for_each`` stages: how many instances is only known at run time."""
    return [
        f"dynamic: {stage.name} runs once per item of stages.{stage.for_each[0]}.outputs.{stage.for_each[1]}"
        " (instances known at run time; timings count one)"
        for stage in plan.stages if stage.for_each
    ]


def _resource_lines(plan: Plan) -> list[str]:
    """What each stage holds on a cluster worker (``resources``, the stage's over its agent's)."""
    agents = {agent.name: agent for agent in plan.agents}
    lines: list[str] = []
    for stage in plan.stages:
        merged: dict[str, object] = {}
        agent = agents.get(stage.agents[0]) if len(stage.agents) == 1 else None
        declared = agent.options.get("resources") if agent is not None else None
        if isinstance(declared, Mapping):
            merged.update(declared)
        merged.update(stage.resources)
        if merged:
            lines.append(f"  {stage.name}: " + ", ".join(f"{k} = {v}" for k, v in merged.items()))
    return ["", "resources on a cluster worker:", *lines] if lines else []
