"""The escape hatch: a lab's own Python function (``python: module:function``), loaded from the lab's folder
and called as ``function(ctx, **args)``."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from gitops_lab.errors import UsageError
from gitops_lab.labs.actions.context import CheckResult, LabContext


def call_python(ctx: LabContext, p: dict[str, Any]) -> Any:
    module_name, function = p["function"].split(":")
    path = ctx.lab.folder / f"{module_name}.py"
    qualified = f"gitops_lab_lab_{ctx.lab.id.replace('-', '_')}_{module_name}"
    spec = importlib.util.spec_from_file_location(qualified, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path} cannot be loaded as a Python module", fix="name a .py file next to lab.yaml")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return getattr(module, function)(ctx, **(p.get("args") or {}))


def check_python(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    value = call_python(ctx, p)
    if isinstance(value, CheckResult):
        return value
    if isinstance(value, tuple):
        return CheckResult(bool(value[0]), str(value[1]) if len(value) > 1 else "")
    return CheckResult(bool(value), f"{p['function']} returned {value!r}")
