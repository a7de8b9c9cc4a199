"""Fan-out: `matrix` stages compile into one stage per combination and run as real processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from conftest import ALFREDC

FLOW = """
agent sh {
  kind = command
  concurrency = 4
}

workflow ci {
  stage build {
    agent = sh
    run   = "echo built"
  }

  stage test after build {
    agent  = sh
    matrix = {
      python  = ["3.11", "3.12"],
      shard   = [1, 2, 3],
      exclude = [{ python = "3.11", shard = 3 }],
      include = [{ python = "3.13", shard = 1, extra = "x" }, { shard = 2, slow = true }]
    }
    env = { PY = "${matrix.python}" }
    run = "RUN"
    description = "tests on Python ${matrix.python}, shard ${matrix.shard}"
  }

  stage report after test {
    agent  = sh
    inputs = { results = stages.test.outputs }
    run    = "cp \\"$ALFRED_INPUTS\\" report.json"
  }
}
""".replace(
    "RUN",
    'echo \\"$ALFRED_STAGE|$PY|${matrix.shard}|${matrix.slow}\\" > \\"out/$ALFRED_STAGE\\"; '
    "echo py=${matrix.python} > $ALFRED_OUTPUTS",
)

MEMBERS = [
    "test[python=3.11,shard=1]",
    "test[python=3.11,shard=2]",
    "test[python=3.12,shard=1]",
    "test[python=3.12,shard=2]",
    "test[python=3.12,shard=3]",
    "test[python=3.13,shard=1,extra=x]",
]


def _alfredc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ALFREDC, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _project(tmp_path: Path, text: str = FLOW) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "flow.alfred").write_text(text)
    return tmp_path


def _plan(tmp_path: Path) -> dict[str, Any]:
    result = _alfredc(tmp_path, "plan", "flow.alfred", "--format", "json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_the_matrix_compiles_to_one_stage_per_combination(tmp_path: Path) -> None:
    plan = _plan(_project(tmp_path))
    stages = {stage["name"]: stage for stage in plan["stages"]}
    assert list(stages) == ["build", *MEMBERS, "report"]
    assert stages["test[python=3.11,shard=2]"]["matrix"] == {"python": "3.11", "shard": 2, "slow": True}
    included = stages["test[python=3.13,shard=1,extra=x]"]
    assert included["matrix"] == {"python": "3.13", "shard": 1, "extra": "x"}
    assert all(stages[m]["fan_out"] == "test" and stages[m]["group"] == ["test"] for m in MEMBERS)
    assert all(stages[m]["after"] == ["build"] for m in MEMBERS)
    assert stages["report"]["after"] == MEMBERS  # `after test` and `stages.test.outputs`: every member


def test_a_run_runs_every_member_with_its_values_and_hands_on_the_map_of_outputs(tmp_path: Path) -> None:
    _project(tmp_path)
    result = _alfredc(tmp_path, "run", "flow.alfred")
    assert result.returncode == 0, result.stderr
    written = {p.name: p.read_text().strip() for p in (tmp_path / "out").iterdir()}
    assert written == {
        "test[python=3.11,shard=1]": "test[python=3.11,shard=1]|3.11|1|",
        "test[python=3.11,shard=2]": "test[python=3.11,shard=2]|3.11|2|true",
        "test[python=3.12,shard=1]": "test[python=3.12,shard=1]|3.12|1|",
        "test[python=3.12,shard=2]": "test[python=3.12,shard=2]|3.12|2|true",
        "test[python=3.12,shard=3]": "test[python=3.12,shard=3]|3.12|3|",
        "test[python=3.13,shard=1,extra=x]": "test[python=3.13,shard=1,extra=x]|3.13|1|",
    }
    report = json.loads((tmp_path / "report.json").read_text())
    assert report == {"results": {m[len("test["):-1]: {"py": m.split("=")[1].split(",")[0]} for m in MEMBERS}}
    run_id = _alfredc(tmp_path, "runs", "--format", "json")
    assert run_id.returncode == 0, run_id.stderr


def test_logs_and_show_take_a_member_name_with_brackets(tmp_path: Path) -> None:
    _project(tmp_path)
    assert _alfredc(tmp_path, "run", "flow.alfred").returncode == 0
    run_dirs = list((tmp_path / ".alfred" / "runs").iterdir())
    assert len(run_dirs) == 1
    logs = _alfredc(tmp_path, "logs", run_dirs[0].name, "test[python=3.12,shard=3]")
    assert logs.returncode == 0, logs.stderr
    show = _alfredc(tmp_path, "show", run_dirs[0].name)
    assert show.returncode == 0, show.stderr
    assert "test[python=3.12,shard=3]" in show.stdout


def test_a_matrix_value_reaches_a_shell_as_data(tmp_path: Path) -> None:
    flow = """
agent sh {
  kind = command
}
workflow w {
  stage s {
    agent  = sh
    matrix = { word = ["a; touch pwned", "$(touch pwned2)"] }
    run    = "echo ${matrix.word} >> words.txt"
  }
}
"""
    _project(tmp_path, flow)
    result = _alfredc(tmp_path, "run", "flow.alfred")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    assert sorted((tmp_path / "words.txt").read_text().splitlines()) == ["$(touch pwned2)", "a; touch pwned"]


def test_include_follows_github_actions_documented_example(tmp_path: Path) -> None:
    # https://docs.github.com/en/actions/using-jobs/using-a-matrix-for-your-jobs#example-expanding-configurations
    flow = """
agent sh {
  kind = command
}
workflow w {
  stage s {
    agent  = sh
    run    = "true"
    matrix = {
      fruit   = ["apple", "pear"],
      animal  = ["cat", "dog"],
      include = [
        { color = "green" },
        { color = "pink", animal = "cat" },
        { fruit = "apple", shape = "circle" },
        { fruit = "banana" },
        { fruit = "banana", animal = "cat" }
      ]
    }
  }
}
"""
    plan = _plan(_project(tmp_path, flow))
    assert [stage["matrix"] for stage in plan["stages"]] == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]
    assert [stage["name"] for stage in plan["stages"]] == [
        "s[fruit=apple,animal=cat]",
        "s[fruit=apple,animal=dog]",
        "s[fruit=pear,animal=cat]",
        "s[fruit=pear,animal=dog]",
        "s[fruit=banana]",
        "s[fruit=banana,animal=cat]",
    ]


def test_graph_draws_the_group_as_a_subgraph_and_a_cluster(tmp_path: Path) -> None:
    _project(tmp_path)
    mermaid = _alfredc(tmp_path, "graph", "flow.alfred", "--format", "mermaid")
    assert mermaid.returncode == 0, mermaid.stderr
    lines = mermaid.stdout.splitlines()
    start = lines.index('  subgraph g0["test"]')
    assert [line.strip().split('"')[1].split("<br/>")[0] for line in lines[start + 1 : start + 7]] == MEMBERS
    assert lines[start + 7] == "  end"
    dot = _alfredc(tmp_path, "graph", "flow.alfred", "--format", "dot")
    assert dot.returncode == 0, dot.stderr
    assert 'label="test";' in dot.stdout
    assert '"test[python=3.12,shard=3]" -> "report";' in dot.stdout


def _check(tmp_path: Path, stage_body: str) -> list[dict[str, Any]]:
    flow = f"""
agent sh {{
  kind = command
}}
workflow w {{
  stage s {{
    agent = sh
{stage_body}
  }}
}}
"""
    _project(tmp_path, flow)
    result = _alfredc(tmp_path, "check", "flow.alfred", "--format", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    found: list[dict[str, Any]] = json.loads(result.stdout)["diagnostics"]
    return found


def test_an_empty_axis_is_a311(tmp_path: Path) -> None:
    found = _check(tmp_path, '    matrix = { shard = [] }\n    run = "true"')
    assert [(d["code"], d["message"]) for d in found] == [("A311", "matrix axis `shard` is an empty list")]
    assert found[0]["line"] == 8


def test_an_axis_that_is_not_a_list_is_a311(tmp_path: Path) -> None:
    found = _check(tmp_path, '    matrix = { shard = 3 }\n    run = "true"')
    assert [(d["code"], d["message"]) for d in found] == [("A311", "matrix axis `shard` is not a list")]


def test_an_unknown_key_in_exclude_is_a216_with_a_suggestion(tmp_path: Path) -> None:
    found = _check(tmp_path, '    matrix = { shard = [1, 2], exclude = [{ shrad = 1 }] }\n    run = "true"')
    assert [d["code"] for d in found] == ["A216"]
    assert "`shrad`" in found[0]["message"] and "did you mean `shard`?" in found[0]["help"]


def test_a_missing_matrix_key_is_a216_with_a_suggestion(tmp_path: Path) -> None:
    found = _check(tmp_path, '    matrix = { python = ["3.12"] }\n    run = "echo ${matrix.pyhton}"')
    assert [d["code"] for d in found] == ["A216"]
    assert "did you mean `python`?" in found[0]["help"]
    assert (found[0]["line"], found[0]["column"]) == (9, 19)


def test_matrix_outside_a_matrix_stage_is_a216(tmp_path: Path) -> None:
    found = _check(tmp_path, '    run = "echo ${matrix.python}"')
    assert [d["code"] for d in found] == ["A216"]
    assert "without a `matrix`" in found[0]["message"]
