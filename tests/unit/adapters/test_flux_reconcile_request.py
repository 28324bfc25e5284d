"""What Flux is asked to reconcile when a command waits for a commit.

Asking the Kustomization while its GitRepository has not fetched the commit
makes Flux apply the old artifact first, then again at the commit: only the
source is asked then. Once the source has the commit, the Kustomization is.
"""

from __future__ import annotations

from typing import Any

from gitops_lab.adapters.engines.flux import REQUESTED_AT, Flux

COMMIT = "a" * 40


class FakeApplier:
    def __init__(self, source_revision: str | None) -> None:
        self.source_revision = source_revision
        self.patched: list[str] = []

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        assert kind == "GitRepository"
        if self.source_revision is None:
            return {"status": {}}
        return {"status": {"artifact": {"revision": f"main@sha1:{self.source_revision}"}}}

    def merge_patch(self, api_version: str, kind: str, name: str, patch: dict, namespace: str | None) -> None:
        assert REQUESTED_AT in patch["metadata"]["annotations"]
        self.patched.append(kind)


def asked(source_revision: str | None, commit: str | None) -> list[str]:
    engine = Flux()
    fake = FakeApplier(source_revision)
    engine._applier = fake  # type: ignore[assignment]
    engine.request_reconcile("staging", commit)
    return fake.patched


def test_only_the_source_is_asked_while_it_has_not_fetched_the_commit():
    assert asked(None, COMMIT) == ["GitRepository"]
    assert asked("b" * 40, COMMIT) == ["GitRepository"]


def test_only_the_kustomization_is_asked_once_the_source_has_the_commit():
    assert asked(COMMIT, COMMIT) == ["Kustomization"]


def test_without_a_commit_both_are_asked():
    assert asked(COMMIT, None) == ["GitRepository", "Kustomization"]
