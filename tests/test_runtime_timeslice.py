"""The event loop's short time slice (Linux >= 6.12): set for the run, not inherited, restored."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from alfred_dsl.runtime._timeslice import SLICE_NS, short_time_slice


def _slice_in(sched: str) -> int | None:
    """The ``se.slice`` figure of a ``/proc/.../sched`` text (None when the kernel shows none)."""
    found = re.search(r"^se\.slice\s*:\s*(\d+)", sched, re.MULTILINE)
    return int(found.group(1)) if found else None


def _my_slice() -> int | None:
    try:
        return _slice_in(Path(f"/proc/self/task/{threading.get_native_id()}/sched").read_text())
    except OSError:
        return None


def _child_slice() -> int:
    # The child reads its own entry: the slice a process started from this thread gets.
    done = subprocess.run(["cat", "/proc/self/sched"], capture_output=True, text=True, check=True)
    found = _slice_in(done.stdout)
    assert found is not None
    return found


def _supported() -> bool:
    before = _my_slice()
    if before is None:
        return False
    with short_time_slice():
        return _my_slice() == SLICE_NS


needs_slices = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not _supported(),
    reason="the kernel has no per-thread slice (Linux < 6.12) or /proc shows none",
)


@needs_slices
def test_the_slice_is_short_inside_and_restored_after() -> None:
    before = _my_slice()
    with short_time_slice():
        assert _my_slice() == SLICE_NS
    assert _my_slice() == before


@needs_slices
def test_processes_started_inside_get_the_default_slice() -> None:
    default = _child_slice()
    with short_time_slice():
        assert _child_slice() == default != SLICE_NS


@needs_slices
def test_nested_uses_keep_the_slice_until_the_outermost_ends() -> None:
    before = _my_slice()
    with short_time_slice():
        with short_time_slice():
            pass
        assert _my_slice() == SLICE_NS
    assert _my_slice() == before


@needs_slices
def test_uses_that_end_out_of_order_restore_when_the_last_ends() -> None:
    before = _my_slice()
    first, second = short_time_slice(), short_time_slice()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert _my_slice() == SLICE_NS
    second.__exit__(None, None, None)
    assert _my_slice() == before


@needs_slices
def test_other_threads_keep_their_slice() -> None:
    seen: list[int | None] = []
    with short_time_slice():
        thread = threading.Thread(target=lambda: seen.append(_my_slice()))
        thread.start()
        thread.join()
    assert seen and seen[0] != SLICE_NS


@needs_slices
def test_a_thread_with_a_negative_nice_value_is_left_alone() -> None:
    # Reset on fork would take the stages' nice value back to 0: the runtime must not use it.
    code = (
        "import os, re, threading\n"
        "from alfred_dsl.runtime._timeslice import short_time_slice\n"
        "os.nice(-1)\n"
        "path = f'/proc/self/task/{threading.get_native_id()}/sched'\n"
        "with short_time_slice():\n"
        "    print(re.search(r'se\\.slice\\s*:\\s*(\\d+)', open(path).read()).group(1))\n"
        "    print(os.popen('cut -d\" \" -f19 /proc/self/stat').read().strip())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if "PermissionError" in done.stderr or "Operation not permitted" in done.stderr:
        pytest.skip("lowering the nice value needs privileges")
    assert done.returncode == 0, done.stderr
    slice_ns, child_nice = done.stdout.split()
    assert int(slice_ns) != SLICE_NS
    assert int(child_nice) == -1  # the stage inherits the nice value


@needs_slices
def test_the_environment_variable_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALFRED_NO_SHORT_SLICE", "1")
    before = _my_slice()
    with short_time_slice():
        assert _my_slice() == before


def test_a_run_leaves_the_thread_as_it_found_it(tmp_path: Path) -> None:
    import trio

    from alfred_dsl import compile as compile_path
    from alfred_dsl.runtime import EventBus, RunOptions, StateStore, execute

    source = tmp_path / "flow.alfred"
    source.write_text(
        "agent sh {\n  kind = command\n}\n\nworkflow w {\n"
        '  stage a {\n    agent = sh\n    run = ["true"]\n  }\n'
        '  stage b {\n    agent = sh\n    run = ["true"]\n    after = [a]\n  }\n}\n'
    )
    plan = compile_path(source)
    before = _my_slice()
    during: list[int | None] = []
    bus = EventBus()
    bus.subscribe(lambda event: during.append(_my_slice()))  # handlers run on the loop's thread
    store = StateStore(tmp_path / "state")
    result = trio.run(lambda: execute(plan, store=store, options=RunOptions(), bus=bus))
    store.close()
    assert result.state == "succeeded"
    assert _my_slice() == before
    if _supported():
        assert during and set(during) == {SLICE_NS}
