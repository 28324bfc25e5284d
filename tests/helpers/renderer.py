"""Whether the policy gate can render overlays here (kustomize or kubectl)."""

from __future__ import annotations

import pytest

from gitops_lab.errors import PreflightError
from gitops_lab.adapters import renderer


def has_kustomize() -> bool:
    try:
        renderer.kustomize_command()
    except PreflightError:
        return False
    return True


needs_kustomize = pytest.mark.skipif(not has_kustomize(), reason="the policy gate needs kustomize or kubectl")
