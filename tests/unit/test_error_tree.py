"""The one error tree: every exception class of the package derives from
OnboardError and is drawn in exceptions.py's docstring; retry semantics and
the HTTP status are carried by the type."""

import ast
import inspect
import pkgutil
from pathlib import Path

import pytest

import os_onboard
from os_onboard import exceptions
from os_onboard.exceptions import (
    CloudError,
    HostUnreachable,
    ObjectVanished,
    OnboardError,
    TemporaryCloudError,
)


def _modules() -> list:
    failed: list[str] = []
    walked = pkgutil.walk_packages(os_onboard.__path__, "os_onboard.", onerror=failed.append)
    names = [info.name for info in walked]
    assert failed == []  # a package that cannot be imported hides its exceptions
    return [__import__(name, fromlist=["_"]) for name in names]


def _defined_exceptions() -> list[type[BaseException]]:
    found = []
    for module in [os_onboard, *_modules()]:
        for _name, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def test_walk_finds_the_classes_that_used_to_live_elsewhere():
    names = {cls.__name__ for cls in _defined_exceptions()}
    assert {"MalformedXml", "RenameError", "HookConflict", "StalePlanError",
            "TemporaryCloudError", "VolumeWentToError"} <= names


def test_every_exception_class_derives_from_onboard_error_and_is_drawn():
    drawn = exceptions.__doc__ or ""
    offenders = [f"{cls.__module__}.{cls.__qualname__}" for cls in _defined_exceptions()
                 if not issubclass(cls, OnboardError) or cls.__name__ not in drawn]
    assert offenders == []


def test_every_exception_is_defined_in_exceptions_py():
    """Defined there, not only named: callers import them from one place, and the
    libvirt hook gets them without importing a driver."""
    elsewhere = [f"{cls.__module__}.{cls.__qualname__}" for cls in _defined_exceptions()
                 if cls.__module__ != "os_onboard.exceptions"]
    assert elsewhere == []


def test_exceptions_py_is_standard_library_only():
    """The qemu hook (system python3, no venv) imports the host-write errors."""
    tree = ast.parse(Path(exceptions.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__"}


@pytest.mark.parametrize("cls", [HostUnreachable, ObjectVanished, TemporaryCloudError])
def test_temporary_errors_say_so_by_type(cls):
    assert cls("x").temporary is True


def test_every_other_error_is_permanent():
    temporary = {cls.__name__ for cls in _defined_exceptions() if cls.temporary}
    assert temporary == {"HostUnreachable", "ObjectVanished", "TemporaryCloudError"}


def test_http_status_is_a_typed_attribute_of_cloud_error():
    assert CloudError("refused", status_code=409).status_code == 409
    assert CloudError("no answer").status_code is None
    assert TemporaryCloudError("503", status_code=503).status_code == 503
    assert inspect.signature(CloudError).parameters["status_code"].kind is \
        inspect.Parameter.KEYWORD_ONLY
