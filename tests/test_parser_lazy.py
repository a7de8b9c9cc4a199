"""The LALR loop's table (compiler/syntax/_lalr.py) digests a state when a parse first reaches it:
a small file pays for the few states it uses, and every file parses exactly as with all states
digested up front."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from test_parser_fast import FILES, _same
from test_startup import ONE_STAGE

from alfred_dsl._source import SourceFile
from alfred_dsl.compiler import syntax
from alfred_dsl.compiler.syntax import _lalr, parse_ast

#: Parse ONE_STAGE in a fresh process; print the states digested and the states of the table.
PROBE = (
    "import sys\n"
    "from alfred_dsl._source import SourceFile\n"
    "from alfred_dsl.compiler.syntax import _lalr, parse_ast\n"
    "text = sys.stdin.read()\n"
    "tree, problems = parse_ast(SourceFile('one.alfred', text))\n"
    "assert tree is not None and not problems, problems\n"
    "table = _lalr.digested_table(_lalr._parser())\n"
    "first = len(table)\n"
    "parse_ast(SourceFile('one.alfred', text))\n"
    "print(first, len(table), len(_lalr._parser().parser.parser.parser.parse_table.states))\n"
)


@contextmanager
def _lark_loop() -> Iterator[None]:
    """Every text through Lark's loop (the patched one), never the fast path of large files."""
    saved = syntax._ACCELERATE_FROM
    syntax._ACCELERATE_FROM = 1 << 62
    try:
        yield
    finally:
        syntax._ACCELERATE_FROM = saved


def test_a_small_file_digests_only_the_states_its_parse_reaches() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], input=ONE_STAGE, capture_output=True, text=True,
                            timeout=120, check=True)
    first, again, states = map(int, result.stdout.split())
    assert states > 1000  # the whole grammar's table
    assert 0 < first < states // 10  # a 1-stage file reaches a few dozen states
    assert again == first  # the same text again reaches no new state


def test_every_file_parses_the_same_with_states_digested_lazily_or_all_up_front() -> None:
    parser = _lalr._parser()
    with _lark_loop():
        parse_ast(SourceFile("warm.alfred", ONE_STAGE))  # the table exists once a parse has begun
        table = _lalr.digested_table(parser)
        assert table is not None
        table.clear()  # each state is digested again, in the middle of the parses below
        sources = [SourceFile(str(path), path.read_bytes().decode("utf-8", "replace")) for path in FILES]
        lazily = [parse_ast(source) for source in sources]
        reached = len(table)
        all_states = parser.parser.parser.parser.parse_table.states
        for state in all_states:
            table[state]  # digests the state
        assert reached < len(table) == len(all_states)
        up_front = [parse_ast(source) for source in sources]
    assert any(problems for _, problems in lazily)  # the broken examples: errors and recovery too
    for source, one, other in zip(sources, lazily, up_front, strict=True):
        _same(one, other, source.name)
