"""The public API of ``alfred_dsl``: every exported name resolves and is documented."""

from __future__ import annotations

import inspect

import pytest

import alfred_dsl


def test_all_is_a_sorted_list_of_unique_names() -> None:
    names = list(alfred_dsl.__all__)
    assert names, "alfred_dsl.__all__ is empty"
    assert len(names) == len(set(names)), "duplicate names in alfred_dsl.__all__"
    assert all(isinstance(name, str) and not name.startswith("_") for name in names)


@pytest.mark.parametrize("name", sorted(alfred_dsl.__all__))
def test_exported_name_resolves_and_has_a_docstring(name: str) -> None:
    obj = getattr(alfred_dsl, name, None)
    assert obj is not None, f"alfred_dsl.{name} is listed in __all__ but does not exist"
    if inspect.isclass(obj):
        # Its own docstring: not one inherited (Enum's) nor the signature a dataclass makes up.
        doc = obj.__dict__.get("__doc__") or ""
        assert doc.strip() and not doc.startswith(f"{obj.__name__}("), f"alfred_dsl.{name} has no docstring"
    elif inspect.isfunction(obj) or inspect.ismodule(obj):
        assert (obj.__doc__ or "").strip(), f"alfred_dsl.{name} has no docstring"


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from alfred_dsl import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(alfred_dsl.__all__)


def test_version_is_a_string() -> None:
    assert isinstance(alfred_dsl.__version__, str) and alfred_dsl.__version__[0].isdigit()


def test_the_python_builder_is_public() -> None:
    """docs/python.md imports these from ``alfred_dsl`` itself, never from a private module."""
    for name in ("Agent", "Stage", "Workflow", "agent", "templates"):
        assert name in alfred_dsl.__all__
    assert alfred_dsl.templates.feature_development.__doc__
    assert alfred_dsl.Workflow.from_file.__doc__ and alfred_dsl.Workflow.to_alfred.__doc__
    assert alfred_dsl.Engine.execute.__doc__


def test_approvals_are_public() -> None:
    """docs/language.md decides approval stages from Python with these names."""
    for name in ("approve", "reject", "ApprovalError", "Decision"):
        assert name in alfred_dsl.__all__
    assert issubclass(alfred_dsl.ApprovalError, alfred_dsl.AlfredError)
