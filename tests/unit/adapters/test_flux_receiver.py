"""`up` waits until Flux's Receiver serves the path Gitea's webhook is sent to: what each state of the Receiver
reads as, and the one line when it never gets there (the real wait: tests/e2e/testbed/test_flux_webhook_testbed.py)."""

from __future__ import annotations

import pytest

from gitops_lab.adapters.engines import flux_receiver
from gitops_lab.adapters.engines.flux_receiver import receiver_verdict, wait_receiver_ready
from gitops_lab.deadline import Deadline
from gitops_lab.errors import WaitTimeout

PATH = "/hook/abc"


def _receiver(ready: str | None, path: str | None = None, message: str = "") -> dict:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready, "message": message}]
    return {"status": {"conditions": conditions, **({"webhookPath": path} if path else {})}}


def test_only_a_ready_receiver_serving_the_path_passes():
    assert receiver_verdict(_receiver("True", PATH), PATH) == (True, f"Ready, serving {PATH}")
    assert receiver_verdict(None, PATH) == (False, "the Receiver does not exist")
    assert receiver_verdict(_receiver(None), PATH)[1].endswith("not reconciled it yet (no Ready condition)")
    assert receiver_verdict(_receiver("False", message='secret "lab-webhook" not found'), PATH) == (
        False,
        'Ready=False: secret "lab-webhook" not found',
    )
    assert receiver_verdict(_receiver("True", "/hook/other"), PATH) == (
        False,
        f"Ready, but it serves /hook/other, not {PATH}",
    )


def test_a_receiver_never_ready_is_one_line_naming_it_and_the_fix(monkeypatch):
    def times_out(*args, **kwargs):
        raise WaitTimeout(f"timed out after 5s waiting for {args[7]}; last seen: Ready=False: no secret")

    monkeypatch.setattr(flux_receiver, "wait_for", times_out)
    with pytest.raises(WaitTimeout) as exc:
        wait_receiver_ready(object(), "gitops-lab", "flux-system", PATH, Deadline(5))
    assert exc.value.message == (
        "timed out after 5s waiting for Flux's Receiver flux-system/gitops-lab (Gitea's push webhooks) to report "
        "Ready; last seen: Ready=False: no secret"
    )
    assert exc.value.fix is not None and "kubectl -n flux-system describe receiver gitops-lab" in exc.value.fix
