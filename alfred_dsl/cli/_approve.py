"""``alfredc approve`` and ``alfredc reject``: decide an approval stage of a waiting run.

The decision goes to the state directory; the run (in another terminal, a worker, or a
later ``alfredc run --resume``) picks it up. Exit statuses: 0 recorded; 2 unknown run or
stage, a stage that is not waiting, a user who may not decide, an unusable state directory.
"""

from __future__ import annotations

import json

import click

from .._values import format_clock
from ._common import print_error

__all__ = ["approve", "reject"]

EXIT_OK, EXIT_USAGE = 0, 2


def _decide(run_id: str, stage: str, decision: str, comment: str, user: str | None, fmt: str,
            state_dir: str | None) -> int:
    from ..runtime._approval import ApprovalError, decide

    try:
        recorded = decide(run_id, stage, decision, user=user, comment=comment, state_dir=state_dir)
    except ApprovalError as exc:
        print_error(str(exc))
        return EXIT_USAGE
    if fmt == "json":
        click.echo(json.dumps({"run_id": recorded.run_id, "stage": recorded.stage, **recorded.outputs()}))
    else:
        when = format_clock(recorded.decided_at)
        click.echo(
            f"run {recorded.run_id}: stage {recorded.stage} {recorded.decision} by {recorded.by} at {when}"
        )
    return EXIT_OK


def _command(decision: str, verb: str) -> click.Command:
    @click.command(name=verb, help=(
        f"{verb.capitalize()} approval stage STAGE of run RUN (an id, a unique prefix, or `last`).\n\n"
        f"The waiting run continues within a second; a run that is not running takes the decision "
        f"when it is resumed. Only the users its `by` names (through the workflow's `approvers`) may decide."
    ))
    @click.argument("run")
    @click.argument("stage")
    @click.option("--comment", "-m", default="", metavar="TEXT", help="Why; recorded with the decision.")
    @click.option("--as", "user", metavar="NAME", help="Decide as NAME (default: the OS user).")
    @click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
    @click.option("--state", "state_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=str),
                  default=None, help="The state directory (default: .alfred in the current directory).")
    def command(run: str, stage: str, comment: str, user: str | None, fmt: str, state_dir: str | None) -> int:
        return _decide(run, stage, decision, comment, user, fmt, state_dir)

    return command


approve = _command("approved", "approve")
reject = _command("rejected", "reject")
