"""Flux's Receiver, once applied: ready to take the forge's push webhooks.

notification-controller serves a Receiver's path only once it has reconciled it: until then a delivery is
refused (503), and a push announced meanwhile waits for the GitRepositories' poll. So `up` waits (within the
command's deadline) until the Receiver reports Ready=True with its ``status.webhookPath`` the one the forge's
webhook is sent to.
"""

from __future__ import annotations

from typing import Any

from gitops_lab.deadline import Deadline
from gitops_lab.errors import WaitTimeout
from gitops_lab.kube.apply import Applier
from gitops_lab.kube.wait import Verdict, wait_for

NOTIFICATION_API = "notification.toolkit.fluxcd.io/v1"


def receiver_verdict(receiver: dict[str, Any] | None, path: str) -> Verdict:
    """Whether the Receiver serves ``path`` (Ready=True, ``status.webhookPath`` it), and what it shows, in words."""
    if receiver is None:
        return False, "the Receiver does not exist"
    status = receiver.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None:
        return False, "notification-controller has not reconciled it yet (no Ready condition)"
    if ready.get("status") != "True":
        return False, f"Ready={ready.get('status')}: {ready.get('message') or ready.get('reason') or 'no reason given'}"
    served = status.get("webhookPath")
    if served != path:
        return False, f"Ready, but it serves {served or 'no path'}, not {path}"
    return True, f"Ready, serving {path}"


def wait_receiver_ready(applier: Applier, name: str, namespace: str, path: str, deadline: Deadline) -> None:
    """Until Receiver ``namespace/name`` serves ``path``; WaitTimeout naming it and its fix at the deadline."""
    try:
        wait_for(
            applier,
            NOTIFICATION_API,
            "Receiver",
            name,
            namespace,
            lambda obj: receiver_verdict(obj, path),
            deadline,
            f"Flux's Receiver {namespace}/{name} (Gitea's push webhooks) to report Ready",
        )
    except WaitTimeout as exc:
        raise WaitTimeout(
            exc.message,
            fix=f"check notification-controller in {namespace} (`kubectl -n {namespace} describe receiver {name}`, "
            "its log), then run `gitops-lab up` again",
        ) from exc
