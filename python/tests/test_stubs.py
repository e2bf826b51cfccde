"""The type stubs (_native.pyi) and py.typed ship with the package and describe the extension
module as built: every public name and method on both sides."""

import ast
import inspect
import pathlib
import typing

import pandas
import pyarrow

import flightline
from flightline import _native

PACKAGE = pathlib.Path(flightline.__file__).resolve().parent


def stub_names():
    tree = ast.parse((PACKAGE / "_native.pyi").read_text())
    top, members = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top.add(node.name)
        if isinstance(node, ast.ClassDef):
            members[node.name] = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef)
            } | {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
    return top, members


def test_py_typed_marks_the_package_as_typed():
    assert (PACKAGE / "py.typed").is_file()


def test_the_stub_names_what_the_module_has():
    top, members = stub_names()
    public = {name for name in dir(_native) if not name.startswith("_")}

    assert top == public
    for cls in ("Client", "BatchStream"):
        runtime = {name for name in dir(getattr(_native, cls)) if not name.startswith("__")}
        stubbed = {name for name in members[cls] if not name.startswith("__")}
        assert stubbed == runtime, f"{cls}: stub {sorted(stubbed)} != module {sorted(runtime)}"
    for name in ("retryable",):
        assert name in members["FlightlineError"]
    assert {"processor", "stage", "batch", "reason"} <= members["ProcessorError"]


def test_every_public_function_of_the_package_is_annotated():
    for name in flightline.__all__:
        obj = getattr(flightline, name)
        functions = [obj] if inspect.isfunction(obj) else []
        if inspect.isclass(obj) and obj.__module__ == "flightline":
            functions = [f for n, f in vars(obj).items() if inspect.isfunction(f) and not n.startswith("_")]
        for function in functions:
            hints = typing.get_type_hints(function, globalns=vars(flightline), localns={"pandas": pandas, "pyarrow": pyarrow})
            signature = inspect.signature(function)
            missing = [p for p in signature.parameters if p != "self" and p not in hints]
            assert not missing, f"{function.__qualname__}: parameters without a type: {missing}"
            assert "return" in hints, f"{function.__qualname__} has no return type"
