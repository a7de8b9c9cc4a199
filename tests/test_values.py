"""Tests of the shared values module: here, the "did you mean" helper."""

from __future__ import annotations

import difflib
import random
from typing import Any

import pytest

from alfred_dsl import _values
from alfred_dsl._values import SUGGEST_EXHAUSTIVE, SUGGEST_SHORTLIST, did_you_mean, suggest


def test_among_few_names_the_suggestion_is_difflibs() -> None:
    rng = random.Random(7)
    letters, count = "abcdefgh-", SUGGEST_EXHAUSTIVE
    names = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 12))) for _ in range(count)]
    for word in [*rng.sample(names, 50), "abc", "zzz", "hgfedcba"]:
        typo = word[::-1] if len(word) < 4 else word[1:] + word[0]
        assert suggest(typo, names, n=3) == difflib.get_close_matches(typo, names, n=3, cutoff=0.6)


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("stgae-12345", "stage-12345"),  # two letters swapped
        ("stage-1234x", "stage-1234"),  # one too many
        ("stage-9999", "stage-9999"),  # right
        ("satge-77", "stage-77"),
        ("tage-15001", "stage-15001"),  # one missing, at the start
        ("deploy-prod", "deploy-prod"),
        ("deplyo-prod", "deploy-prod"),
    ],
)
def test_among_many_names_a_typo_still_finds_the_name(typo: str, meant: str) -> None:
    names = [f"stage-{i}" for i in range(20_000)] + ["deploy-prod"]
    assert did_you_mean(typo, names) == f"did you mean `{meant}`?"


def test_among_many_names_difflib_compares_a_shortlist(monkeypatch: pytest.MonkeyPatch) -> None:
    # A wrong name in a 100,000-stage workflow compared every stage name (2 s a name).
    compared: list[int] = []
    real = difflib.get_close_matches

    def counting(word: str, possibilities: Any, *args: Any, **kwargs: Any) -> Any:
        compared.append(len(possibilities))
        return real(word, possibilities, *args, **kwargs)

    monkeypatch.setattr(difflib, "get_close_matches", counting)
    names = [f"stage-{i}" for i in range(30_000)]
    assert suggest("stage-x2", names) == ["stage-2"]
    assert suggest("stage-x3", names) == ["stage-3"]
    assert suggest("nothing-like", names) == []
    assert compared == [SUGGEST_SHORTLIST] * 3
    assert suggest("stage-3x", names[:SUGGEST_EXHAUSTIVE]) == ["stage-3"]
    assert compared[-1] == SUGGEST_EXHAUSTIVE


def test_the_shortlist_follows_the_names_it_is_given() -> None:
    # The letter pairs of the last names are kept: another set of names is not answered from them.
    first = [f"stage-{i}" for i in range(5_000)]
    second = [f"task-{i}" for i in range(5_000)]
    assert suggest("stage-12x", first) == ["stage-12"]
    assert suggest("task-12x", second) == ["task-12"]
    assert set(suggest("stage-12x", second, n=5)) <= set(second)
    assert _values._last_pairs[0] == second
