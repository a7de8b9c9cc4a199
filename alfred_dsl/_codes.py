"""The registry of diagnostic codes.

Codes are stable: a code is never reused for another meaning. Ranges follow the language
spec: A0xx input and I/O, A1xx syntax, A2xx names and references, A3xx types and schema,
A4xx graph, A5xx warnings, A6xx export losses, A9xx internal. ``alfredc explain CODE`` prints the explanation;
docs/diagnostics.md is checked against this table by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CODES", "Code", "lookup"]


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    name: str
    summary: str
    explanation: str


def _table(*rows: tuple[str, str, str, str]) -> dict[str, Code]:
    return {code: Code(code, name, summary, explanation.strip()) for code, name, summary, explanation in rows}


CODES: dict[str, Code] = _table(
    # -- A0xx: reading input ------------------------------------------------------
    ("A001", "file-not-found", "the input file does not exist or cannot be read", """
The path given on the command line does not exist, is a directory, or cannot be
opened: `alfredc` exits with status 2. An imported file that exists but cannot be
opened is reported at its `import` (status 1); a missing one is A206.
Fix: check the path and its permissions."""),
    ("A002", "not-utf8", "the input file is not valid UTF-8 text", """
alfred files are UTF-8 text. The file contains bytes that are not valid UTF-8 (it may be
binary, or saved in another encoding). The position of the first bad byte is reported.
Fix: re-save the file as UTF-8."""),
    ("A003", "input-too-large", "the input exceeds a size or nesting limit", """
To protect against runaway input, alfred refuses files larger than 50 MB, values
nested more than 100 levels deep, imports chained more than 100 files deep, and YAML
aliases that expand to more values than the file could hold (an "alias bomb").
Fix: split the file, or flatten the value."""),
    ("A004", "invalid-config", "`alfred.toml` cannot be read or its `[check]` table is invalid", """
`alfredc check` reads the `[check]` table of the project's `alfred.toml` (the nearest
folder above the checked file holding `alfred.toml` or `.git`): `select` and `ignore`,
lists of code prefixes such as `"A5"` or `"A503"`. The file is not TOML, `[check]` has an
unknown key, or a list holds something that is not a code prefix: `alfredc check` exits
with status 2 and `--fix` changes nothing. Fix: correct `alfred.toml` as the message says."""),
    # -- A1xx: syntax -------------------------------------------------------------
    ("A101", "unexpected-character", "a character that cannot start any token", """
The lexer met a character that is not part of the language here, such as `@` or a stray
quote. Fix: remove it, or put it inside a string."""),
    ("A102", "unexpected-token", "a token where the grammar expects something else", """
The parser found a token that does not fit: for example a value where a name is
expected, or a missing `=` between an attribute's name and its value. The message says
what was expected. Fix: write what the message expects at that position."""),
    ("A103", "unclosed-block", "a `{`, `[` or `(` is never closed", """
A block, list, map or parenthesis is opened but the file ends (or another block starts)
before it is closed. The message names the block and where it was opened.
Fix: add the closing `}` `]` or `)`."""),
    ("A104", "unterminated-string", "a string literal is not closed on its line", """
A string starts with `"` but the line ends before the closing quote. Strings cannot span
lines; use `\\n` for a newline. Fix: add the closing quote."""),
    ("A105", "invalid-escape", "an unknown escape sequence in a string", """
Only `\\"`, `\\\\`, `\\n` and `\\t` are escapes in strings. Fix: remove the backslash or
double it."""),
    ("A106", "invalid-literal", "a malformed number or duration", """
Durations are an integer and a unit (`500ms`, `30s`, `5m`, `2h`, `1d`) or sums of them
in decreasing order (`1h30m`). An integer has at most 4300 digits (also in YAML and JSON
files). Fix: write the literal in one of these forms."""),
    ("A107", "keyword-as-name", "a keyword is used as a name", """
Keywords (`agent`, `workflow`, `stage`, `param`, `import`, `use`, `as`, `after`,
`defaults`, `on`, `true`, `false`, `and`, `or`, `not`) cannot name agents, stages,
params or workflows. Fix: choose another name."""),
    ("A108", "invalid-interpolation", "a `${...}` interpolation is not a valid expression", """
Inside a string, `${` starts an expression that runs to the matching `}`. The expression
must be a reference (`params.x`, `stages.build.outputs.path`, `inputs.k`, `env.X`,
`secrets.X`), a literal, or a comparison/boolean of those. Write `$${` for a literal `${`."""),
    ("A109", "yaml-json-syntax", "the YAML or JSON document cannot be parsed", """
A `.yaml`, `.yml` or `.json` input is not well-formed. Fix the syntax at the position
reported. YAML is read with the YAML 1.2 core schema, like JSON and editors: only
`true`/`false` are booleans (`yes`, `on` are strings). A file holds one YAML document;
anchors, aliases and merge keys (`<<: *base`) work; tags other than the standard
`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!map` and `!!seq` are refused, and
so are mapping keys that are not strings."""),
    # -- A2xx: names and references ----------------------------------------------
    ("A201", "unknown-agent", "a stage names an agent that is not declared", """
`agent = NAME` must name an agent declared in this file or an imported one.
Fix: declare the agent, import the file that declares it, or correct the spelling."""),
    ("A202", "unknown-stage", "a dependency names a stage that does not exist", """
`after X` and `stages.X.outputs...` must name a stage of the same workflow (or a `use`
alias). Fix: correct the name or add the stage."""),
    ("A203", "unknown-param", "a reference names a param the workflow does not declare", """
`params.NAME` must name a `param` of the enclosing workflow; `--param NAME=...` and a
`use` binding must name a param of the workflow they target. Fix: declare the param or
correct the spelling."""),
    ("A204", "unknown-output", "a reference names an output the stage does not declare", """
When a stage (or its agent) declares `outputs = [...]`, references
`stages.X.outputs.NAME` must name one of them. Fix: add the output to the list or
correct the spelling."""),
    ("A205", "unknown-template", "`use` names a workflow that does not exist", """
`use NAME(...) as ALIAS` includes the stages of workflow NAME. Fix: declare or import it,
or correct the spelling."""),
    ("A206", "unknown-import", "an imported file does not exist", """
`import "path"` is resolved relative to the importing file. The path must name a
`.alfred`, `.yaml`, `.yml` or `.json` file: a directory or another kind of file is
reported here too. Fix: correct the path."""),
    ("A207", "unknown-capability", "no agent has every capability a stage requires", """
`requires = [...]` selects the agents that have all of the listed capabilities. No
declared agent has them all. Fix: add the capability to an agent, or correct the
spelling."""),
    ("A208", "duplicate-name", "a name is declared twice", """
Agents, workflows, stages of one workflow, params of one workflow and `use` aliases must
have unique names. Fix: rename or remove one of them."""),
    ("A209", "unknown-workflow", "the requested workflow does not exist", """
`--workflow NAME` must name a workflow in the file. When a file has several workflows
and no `--workflow` is given, alfred picks the first that is not used as a template.
Fix: correct the name."""),
    ("A210", "unknown-reference", "a reference has an unknown root or shape", """
References start with `params.`, `stages.NAME.outputs.`, `inputs.`, `env.` or `secrets.`.
Fix: use one of these forms."""),
    ("A211", "import-outside-root", "an import leaves the project root", """
Imports may not leave the project root: the nearest ancestor of the checked file that
holds `alfred.toml` or `.git` (else the file's folder). Fix: move the file inside the
project."""),
    ("A212", "import-cycle", "files import each other in a cycle", """
File A imports B which (directly or not) imports A. Fix: move the shared declarations
into a third file that both import."""),
    ("A213", "missing-param", "a required param has no value", """
A param without a default must be given: with `--param NAME=VALUE` on the command line,
or in the `use` that includes the template. Fix: pass a value or declare a default."""),
    ("A214", "unknown-attribute", "an attribute that the block does not have", """
Each block accepts a fixed set of attributes (see docs/language.md). Fix: remove the
attribute or correct its spelling."""),
    ("A215", "template-cycle", "templates include each other in a cycle", """
Workflow A uses template B which (directly or not) uses A again, so the expansion would
never end. The message names the chain of templates. Fix: break the cycle, e.g. by moving
the shared stages into a third template that both use."""),
    ("A216", "unknown-matrix-key", "a `${matrix.KEY}` or an `exclude` names no key of the stage's matrix", """
`${matrix.KEY}` is the value of KEY in the combination a fan-out member runs with: it
exists only in a stage that has a `matrix`, and KEY must be one of its axes or a key an
`include` entry adds. An `exclude` entry may only name axes. Fix: correct the key (the
message suggests the closest one), or declare the matrix."""),
    ("A217", "unknown-approver", "an approval's `by` names no role or user of `approvers`", """
An approval stage's `by` names who may decide: a role of the workflow's `approvers` map
(`approvers = { lead = ["alice", "bob"] }`) or a user listed in one of its roles. This name
is neither, or the workflow has no `approvers`. Nobody could approve the stage.
Fix: correct the name, or add the role or user to `approvers`."""),
    ("A218", "unknown-each-key", "a `${each.KEY}` outside a `for_each` stage, or not `item`/`index`", """
`${each.item}` is the item a `for_each` instance runs with and `${each.index}` its position
(0, 1, ...): they exist only in a stage that has `for_each = stages.STAGE.outputs.KEY`, and
`each` has no other key. Fix: correct the key (the message suggests the closest one), or
declare the stage's `for_each`."""),
    # -- A3xx: types and schema ---------------------------------------------------
    ("A301", "schema-violation", "the normalized document does not match the schema", """
The document (from the DSL, YAML or JSON) does not satisfy
`schemas/workflow.schema.json`. The message says which rule failed."""),
    ("A302", "type-mismatch", "a value has the wrong type", """
A param default, a `--param` value, a `use` binding or an attribute has a type other
than the one declared or expected. Fix: write a value of the expected type."""),
    ("A303", "when-not-boolean", "`when` is not a boolean expression", """
`when` decides whether a stage runs; it must be `true`, `false`, a boolean param or a
comparison/boolean expression. Fix: compare the value, e.g. `params.env == "prod"`."""),
    ("A304", "invalid-duration", "a duration is malformed or out of range", """
Durations are strings like `500ms`, `30s`, `5m`, `2h`, `1d`, `1h30m`, or a number of
seconds in YAML/JSON. They must not be negative. Fix: write a valid duration."""),
    ("A305", "invalid-priority", "a priority is not a known level or an integer", """
`priority` is `low`, `medium`, `high`, `critical` or an integer. Fix: use one of them."""),
    ("A306", "agent-and-requires", "a stage needs exactly one of `agent` or `requires`", """
A stage either names its agent or lists the capabilities it requires, not both and not
neither. Fix: keep exactly one of them."""),
    ("A307", "missing-command", "a stage has nothing to run", """
A command stage needs `run` (from the stage or its agent); a python stage needs `call`;
an http agent needs `url`. Fix: add what the executor needs."""),
    ("A308", "invalid-param-value", "a `--param` value cannot be read as its declared type", """
`--param k=v` is parsed to the declared type: `int` and `float` numbers, `bool` as
true/false, `duration` as `30s` etc., `list` and `map` as JSON. Fix: pass a value of that
type."""),
    ("A309", "invalid-expression", "an expression is ill-typed", """
Comparisons need operands of compatible types and `and`/`or`/`not` need booleans.
Fix: correct the expression."""),
    ("A310", "invalid-schedule", "a `schedule` is not a valid cron expression", """
`schedule` takes a five-field cron expression (minute hour day-of-month month
day-of-week), e.g. `"0 9 * * 1-5"`, or a macro such as `@daily`, read as the service
worker reads it (croniter); one that never fires (`"0 0 30 2 *"`) is refused too.
Fix: correct the expression."""),
    ("A311", "invalid-matrix", "a `matrix` is not a map of non-empty lists", """
A stage's `matrix` is a map from each axis name to a non-empty list of strings, numbers or
booleans, plus optional `exclude` and `include` lists of maps. An empty axis, an axis
that is not a list, a matrix with no axis and no `include`, or two combinations with the
same name are refused. Fix: give each axis at least one value."""),
    ("A312", "approval-without-timeout", "an approval stage has no `timeout`", """
Without a timeout, a run waits for a decision forever. Give `approve` a `timeout` (and
`on_timeout = reject`, the default, or `approve`): when it passes, the run takes that
decision itself, recorded as made by `timeout`.
Fix: add `timeout = 24h` to the `approve` block."""),
    ("A313", "mcp-agent-without-server", "an mcp agent names no server, or two", """
A `kind = mcp` agent calls the tools of one Model Context Protocol server: either a
command alfred starts and talks to over stdio (`server = ["cmd", "arg"]`), or a
streamable HTTP endpoint (`url = "https://host/mcp"`). It names neither, or both.
Fix: keep exactly one of `server` and `url`."""),
    ("A314", "mcp-stage-without-tool", "an mcp stage names no `tool`, or a non-mcp stage has one", """
A stage on a `kind = mcp` agent says which tool of the server it calls (`tool = "NAME"`)
and with which `arguments`; a stage on another kind of agent has no tool to call.
Fix: add `tool = "NAME"` to the stage on the mcp agent, or remove `tool`/`arguments`
from the stage that runs a command."""),
    ("A315", "docs-agent-not-mcp", "a stage's `docs` come from an agent that is not an mcp agent", """
A stage's `docs` are fetched with the tools of an MCP documentation server (Context7's
`resolve-library-id` and `get-library-docs`): the agent that serves them (the entry's
`agent`, else the agent named `context7`) must be a `kind = mcp` agent.
Fix: name an mcp agent in the entry (`docs = [{ library = "trio", agent = "docs" }]`), or
declare `agent context7 { kind = mcp  server = [...] }`."""),
    ("A316", "unknown-tool", "a stage calls a tool its MCP server does not have", """
`alfredc check --online` lists the tools of each MCP server (and `alfredc check` reads the
list `alfredc lock` cached in `alfred.lock`): a stage's `tool` is not among them, or a docs
agent lacks one of the two documentation tools. The help names the closest tool.
Fix: correct the tool's name; for a docs server that renamed its tools, name them in the
agent: `docs_tools = { resolve = "...", get = "..." }`."""),
    ("A317", "bad-tool-argument", "a stage's `arguments` do not fit the tool's input schema", """
The tool's input JSON Schema (listed by `alfredc check --online`, or cached in
`alfred.lock`) refuses the stage's `arguments`: a required argument is missing, an
argument the tool does not take is given, or a value has the wrong type. The position is
that of the offending argument. A value that is a `${...}` string is known only at run
time: its type is not checked.
Fix: give the arguments the schema asks for, with values of the right type."""),
    ("A318", "mcp-server-unreachable", "`check --online` cannot list an MCP server's tools", """
`alfredc check --online` (and `plan --online`) start each stdio MCP server, or connect to
each HTTP one, to list its tools and read the documentation the stages pin: this one did
not answer (it could not be started, refused the connection, or failed).
Fix: make the server reachable (install it, start it, check its `url` and `headers`), or
check without `--online`."""),
    ("A319", "invalid-for-each", "a `for_each` is not one output reference, or is on a matrix stage", """
`for_each` names the list a stage fans out over at run time: exactly one reference to
another stage's output, `for_each = stages.list.outputs.files` (which also makes the stage
wait for `list`). Anything else (a literal list, text around the reference, a param) is
refused, and so is `for_each` on a stage with a `matrix` (the two fan-outs do not combine)
or on an approval stage. Fix: write `for_each = stages.STAGE.outputs.KEY`; for a list known
when you write the file, use a `matrix`."""),
    # -- A4xx: graph --------------------------------------------------------------
    ("A401", "dependency-cycle", "stages depend on each other in a cycle", """
The dependencies (`after`, references to outputs, `after ALIAS`) form a cycle, so no
order can run them. The message names the stages of the cycle in order; each edge is
labelled where it is declared. Fix: remove one of the edges."""),
    ("A402", "too-many-cycles", "more cycles exist than are reported", """
Only the first cycles are reported one by one; the rest are counted. Fix the reported
ones and check again."""),
    # -- A5xx: warnings -----------------------------------------------------------
    ("A501", "unused-agent", "an agent is declared but no stage uses it", """
No stage names the agent and no `requires` selects it. Fix: remove it, or ignore the
warning if another file uses it."""),
    ("A502", "unused-param", "a param is declared but never referenced", """
No expression refers to `params.NAME`. Fix: remove the param or use it."""),
    ("A503", "redundant-after", "an `after` edge is implied by other dependencies", """
The stage already depends on the named stage through another path, so the edge adds
nothing. Fix: remove it to keep the graph readable."""),
    ("A504", "python-module-not-found", "the module of a python `call` cannot be imported", """
A `kind = python` stage calls `module:function`; at run time the stage's folder comes
first on Python's path. Neither that folder (no `module.py`, no package `module/`) nor
Python's own path (installed packages) has the module, so the stage would fail at once
(an import error is not retried). Nothing is imported by `check`.
Fix: put the module in the stage's folder, set the stage's `cwd` to the folder that holds
it, or install it where alfredc runs."""),
    ("A505", "unhandled-rejection", "nothing after an approval handles its rejection", """
A rejected approval fails its stage; the stages after it end `upstream_failed`, except those
whose `when` reads the approval's outputs (`stages.gate.outputs.decision == "rejected"`):
they run and handle the rejection. The warning says that no stage after the approval does, or
that one does but the approval's `on_failure = stop` stops the run before it can run.
Fix: add `on_failure = continue` to the approval and a stage after it with such a `when`."""),
    ("A506", "over-budget", "the worst case of a workflow exceeds its `budget`", """
The worst case assumes every stage runs and every retry is made: for usd and tokens the sum
of each stage's `cost` x (1 + retries); for time the longest path of (timeout, else
estimate) x (1 + retries) plus the backoff waits. When it exceeds `budget`, a run may stop on
its budget before the end. The stages that contribute most are listed.
Fix: raise the budget, lower costs or retries, or accept that the run may stop."""),
    ("A507", "failure-stage-never-runs", "a `run_if = failure` stage can never run", """
A `run_if = failure` stage is decided once its dependencies have finished: it runs when a
stage of the run has failed by then (or the run was cancelled, interrupted or timed out),
and is skipped otherwise. A `failure` stage that depends on no stage (no `after`, no
`${stages...}` reference) is decided as the run starts, before any stage can fail; one with
`when = false` is never run. Either way it never runs (a template's stages are not checked:
a `use ... after` gives them dependencies).
Fix: add `after` the stages whose failure it reports on."""),
    ("A508", "docs-lock-missing", "no `alfred.lock` pins the documentation stages read", """
A stage's `docs` name documentation read from an MCP server (Context7), and no
`alfred.lock` beside the workflow file pins it: each run reads whatever the server says
that day, so two runs may ground their agents in different texts, and a run needs the
server.
Fix: run `alfredc lock FILE`: it records each library's id, version and content hash in
`alfred.lock` (commit it) and caches the texts under `.alfred/docs/`."""),
    ("A509", "docs-lock-stale", "`alfred.lock` does not pin what the stages read", """
A `docs` entry was added or changed since `alfredc lock` wrote `alfred.lock` (the lock pins
each library, topic and token count as written), the lock cannot be read, or - with
`alfredc check --online` - the server's text no longer has the hash the lock pins.
Fix: run `alfredc lock FILE` again and review the lock's diff."""),
    # -- A6xx: export losses (alfredc export) ------------------------------------
    ("A601", "export-retry-delay", "the engine waits differently before a retry", """
`alfredc export` reports it when the target engine cannot reproduce alfred's retry
waits (`backoff` doubling, `max_backoff` cap, up to 10% jitter taken off): Airflow spreads
each doubled wait between 1x and 2x and waits at least 1s; Prefect waits alfred's exact
delays but its jitter lengthens them; Dagster's exponential policy waits (2^n - 1) x
`backoff` with no cap. The retries themselves happen. Fix: nothing if the waits do not
matter; `--strict` refuses the export."""),
    ("A602", "export-timeout", "the engine has no per-task timeout", """
Dagster has no timeout for one op: the exported op stops the attempt itself at the
stage's `timeout`, as `alfredc run` does. Fix: nothing; or bound whole runs with
Dagster's `dagster/max_runtime` tag and run monitoring."""),
    ("A603", "export-priority", "the engine has no task priority", """
Prefect starts ready tasks in the order the flow submits them: a stage's `priority` is
dropped. Fix: nothing if the order of ready stages does not matter."""),
    ("A604", "export-agent-choice", "a stage that may run on several agents runs on one", """
A stage whose `requires` matches several agents runs, once exported, with the first
declared one's command and pool; alfred would pick the least busy agent and move a retry
to another. Fix: name one `agent` for the stage."""),
    ("A605", "export-stop-on-failure", "`on_failure = stop` does not cancel other branches", """
When a stage with `on_failure = stop` fails, `alfredc run` cancels the stages running
beside it. Prefect and Dagster let them finish (Airflow does it with `fail_fast`, but only
for a whole DAG, so not when stages mix `stop` and `continue`). Dependents of the failed
stage never run on any engine. Fix: nothing if independent stages may finish."""),
    ("A606", "export-hook", "a workflow hook is not exported", """
`on failure { ... }` and the other hooks run with `alfredc run` only. Fix: attach the
command with the engine's own callbacks (Airflow `on_failure_callback`, Prefect
`on_failure` hooks, Dagster `run_failure_sensor`)."""),
    ("A607", "export-max-log", "the engine keeps a stage's whole log", """
A stage's `max_log` bounds what `alfredc run` keeps of its output; the engines keep all of
it. Fix: nothing, or bound the log in the command itself."""),
    ("A608", "export-for-each", "a `for_each` stage is not fanned out on the engine", """
A `for_each` stage expands at run time into one instance per item of a list; the exported
module does not expand it: the engine runs the stage once, and its `${each.item}` cannot be
resolved there, so that task fails. Fix: run the workflow with `alfredc run`, or fan out
with a `matrix` (known when the file is written), which every export supports."""),
    # -- A9xx: internal -----------------------------------------------------------
    ("A900", "internal-error", "a bug in alfred itself", """
alfred hit an unexpected condition. This is a bug in alfred, not in your file; the exit
status is 3. Please report it with the input, run with `--debug` for a traceback."""),
)


def lookup(code: str) -> Code | None:
    """The registry entry of ``code`` (case-insensitive), or None."""
    return CODES.get(code.strip().upper())
