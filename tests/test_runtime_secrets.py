"""Secrets, file modes and log caps with real ``alfredc`` processes on real .alfred files.

A secret is masked as the log is written (never afterwards), the files that hold it while
an attempt runs are outside the state directory and gone once it ends (or on ``--resume``
after a ``kill -9``), the state directory is private, and a log has a cap.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from alfred_dsl.runtime._resolve import Masker

# Prints the secret one byte at a time with a flush and a pause after each, so that every
# read of the pipe ends inside it; then says it is done and waits for `release` (if asked).
_DRIP = r"""
import json, os, sys, time
secret = os.environ["TOKEN"]
inputs = json.load(open(os.environ["ALFRED_INPUTS"]))
assert inputs["token"] == secret, inputs
with open(os.environ["ALFRED_OUTPUTS"], "a") as out:
    out.write("echoed=" + secret + "\n")
for ch in "before " + secret + " after\n":
    sys.stdout.write(ch)
    sys.stdout.flush()
    time.sleep(0.01)
with open("pid", "w") as handle:
    handle.write(str(os.getpid()))
if os.path.exists("hold"):
    os.remove("hold")
    time.sleep(60)
print("done")
"""

FLOW = """
agent py {
  kind = command
}
workflow leak {
  stage drip {
    agent = py
    run = ["PYTHON", "drip.py"]
    inputs = { token = "${secrets.TOKEN}" }
  }
}
"""


def _project(tmp_path: Path, flow: str = FLOW) -> Path:
    (tmp_path / ".git").mkdir(exist_ok=True)
    (tmp_path / "drip.py").write_text(_DRIP)
    (tmp_path / "flow.alfred").write_text(flow.replace("PYTHON", sys.executable))
    (tmp_path / "xdg").mkdir(mode=0o700, exist_ok=True)
    return tmp_path


def _env(tmp_path: Path, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["TOKEN"] = secret
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "xdg")  # where the private folder goes
    return env


def _alfredc(*args: str) -> list[str]:
    return [sys.executable, "-m", "alfred_dsl", *args]


def _leaks(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def _secret() -> str:
    return "hunter2-" + uuid.uuid4().hex


def test_a_secret_split_across_reads_never_reaches_the_log_even_while_it_is_written(tmp_path: Path) -> None:
    _project(tmp_path)
    secret = _secret()
    process = subprocess.Popen(
        _alfredc("run", "flow.alfred"), cwd=tmp_path, env=_env(tmp_path, secret),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    seen: set[bytes] = set()
    prefixes = {secret[:n].encode() for n in range(8, len(secret) + 1)}
    while process.poll() is None:
        for log in (tmp_path / ".alfred" / "runs").glob("*/drip.1.log"):
            content = log.read_bytes()
            seen.add(content)
            # Not even the start of the secret is written before the rest is known.
            assert not any(prefix in content for prefix in prefixes), content
        time.sleep(0.002)
    out, err = process.communicate()
    assert process.returncode == 0, err
    assert secret.encode() not in out + err
    (log,) = (tmp_path / ".alfred" / "runs").glob("*/drip.1.log")
    assert log.read_text() == "before *** after\ndone\n"
    assert len(seen) > 2  # the log was read while it grew
    assert _leaks(tmp_path / ".alfred", secret) == []
    assert list((tmp_path / "xdg").iterdir()) == []  # the private folder is gone with the run


def test_after_kill_9_no_file_of_the_state_directory_holds_the_secret_and_resume_scrubs_the_rest(
    tmp_path: Path,
) -> None:
    _project(tmp_path)
    (tmp_path / "hold").write_text("")
    secret = _secret()
    env = _env(tmp_path, secret)
    process = subprocess.Popen(
        _alfredc("run", "flow.alfred"), cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    stage_pid = 0
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "pid").exists() or (tmp_path / "hold").exists():
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.02)
        stage_pid = int((tmp_path / "pid").read_text())
        # The command has read its inputs and written its outputs, and sleeps: kill alfredc.
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        assert _leaks(tmp_path / ".alfred", secret) == []
        # The real values were only in the private folder, outside the state directory.
        (private,) = (tmp_path / "xdg").iterdir()
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert _leaks(private, secret) != []
    finally:
        with contextlib.suppress(ProcessLookupError):
            if stage_pid:
                os.kill(stage_pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
            process.wait()
    runs = list((tmp_path / ".alfred" / "runs").iterdir())
    resumed = subprocess.run(
        _alfredc("run", "flow.alfred", "--resume", runs[0].name), cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert list((tmp_path / "xdg").iterdir()) == []  # what the killed run left is removed
    assert _leaks(tmp_path / ".alfred", secret) == []
    outputs = sorted(p.name for p in runs[0].glob("drip.*.outputs"))
    assert outputs == ["drip.2.outputs"]  # a masked copy
    assert (runs[0] / "drip.2.outputs").read_text() == "echoed=***\n"


def _modes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root.parent)): stat.S_IMODE(p.stat().st_mode)
        for p in [root, *root.rglob("*")]
    }


@pytest.mark.parametrize("with_secret", [True, False])
def test_the_state_directory_is_0700_and_its_files_0600_whatever_the_umask(
    tmp_path: Path, with_secret: bool
) -> None:
    flow = FLOW if with_secret else FLOW.replace("${secrets.TOKEN}", "x")
    _project(tmp_path, flow)
    env = _env(tmp_path, "x" if not with_secret else _secret())
    result = subprocess.run(
        _alfredc("run", "flow.alfred"), cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=60, umask=0o002,
    )
    assert result.returncode == 0, result.stderr
    modes = _modes(tmp_path / ".alfred")
    directories = {name for name in modes if (tmp_path / name).is_dir()}
    assert {name for name in directories if modes[name] != 0o700} == set()
    assert {name: mode for name, mode in modes.items() if name not in directories and mode != 0o600} == {}
    names = {Path(name).name for name in modes}
    assert {"state.db", "drip.1.log", "drip.1.inputs.json", "drip.1.outputs"} <= names


def test_an_existing_world_readable_state_directory_is_made_private(tmp_path: Path) -> None:
    _project(tmp_path)
    state = tmp_path / ".alfred"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    result = subprocess.run(
        _alfredc("run", "flow.alfred"), cwd=tmp_path, env=_env(tmp_path, _secret()),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


_LOUD = """
agent sh {
  kind = command
  max_log = 10KiB
}
workflow loud {
  stage noisy {
    agent = sh
    run = ["PYTHON", "-c", "import sys; sys.stdout.write('y' * 1000000 + '\\\\n'); print('the end')"]
  }
  stage quiet {
    agent = sh
    run = ["PYTHON", "-c", "print('short')"]
    max_log = 1MB
  }
}
"""


def test_a_log_stops_at_max_log_says_so_and_show_reports_it(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "flow.alfred").write_text(_LOUD.replace("PYTHON", sys.executable))
    result = subprocess.run(_alfredc("run", "flow.alfred"), cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    logs = subprocess.run(_alfredc("logs", "last", "noisy"), cwd=tmp_path, capture_output=True, timeout=60)
    assert logs.returncode == 0
    kept, _, note = logs.stdout.partition(b"\nalfred: ")
    assert kept == b"y" * 10240
    # 1000000 y's, a newline and "the end\n" were printed; 10240 bytes kept.
    assert note == f"log truncated at max_log = 10KiB: {1000009 - 10240} more bytes dropped\n".encode()
    show = subprocess.run(_alfredc("show", "last"), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "truncated logs:\n  noisy attempt 1: 989769 bytes of output past max_log not kept" in show.stdout
    assert "quiet" not in show.stdout.partition("truncated logs:")[2]
    quiet = subprocess.run(_alfredc("logs", "last", "quiet"), cwd=tmp_path, capture_output=True, timeout=60)
    assert quiet.stdout == b"short\n"


_FLOOD = """
agent sh {
  kind = command
}
workflow flood {
  stage yes {
    agent = sh
    run = "echo $TOKEN >/dev/null; exec PYTHON -c 'import os\\nwhile 1: os.write(1, b\\"x\\\\n\\" * 32768)'"
    env = { TOKEN = "${secrets.TOKEN}" }
    timeout = 2s
    max_log = 400MB
  }
}
"""

# Runs alfredc and prints the largest resident size (KiB) of the processes it waited for.
_PEAK = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def test_masking_a_flood_of_output_keeps_memory_bounded(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "flow.alfred").write_text(_FLOOD.replace("PYTHON", sys.executable))
    env = {**os.environ, "TOKEN": _secret()}
    peak = subprocess.run(
        [sys.executable, "-c", _PEAK, *_alfredc("run", "flow.alfred")], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )
    (log,) = (tmp_path / ".alfred" / "runs").glob("*/yes.1.log")
    size = log.stat().st_size
    log.unlink()
    # The stage wrote more than the bound below: masking the whole log at once cannot stay under it.
    assert size > 120 * 2**20, size
    peak_mib = int(peak.stdout) / 1024
    assert peak_mib < 100, f"alfredc peaked at {peak_mib:.0f} MiB for a {size / 2**20:.0f} MiB log"


def test_the_stream_masker_masks_secrets_cut_anywhere_and_overlapping() -> None:
    masker = Masker({"a": "hunter2-secret", "b": "secret", "c": "xyz"})
    text = "a hunter2-secret, a secret, xyzxyz, hunter2-secre, secre, xy\n" * 3
    expected = masker.text(text).encode()
    data = text.encode()
    for size in (1, 2, 3, 5, 7, 13, len(data)):
        stream = masker.stream()
        out = b"".join(stream.feed(data[i : i + size]) for i in range(0, len(data), size)) + stream.flush()
        assert out == expected, size
    assert b"hunter2-secret" not in expected and b"xyz" not in expected
    assert expected.count(b"***") == 3 * 4
