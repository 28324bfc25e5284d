"""Checks of the supply-chain lab: the signature check must still be on, with the keys the lab shipped."""

from __future__ import annotations


def signature_check_kept(ctx) -> tuple[bool, str]:
    """gates.yaml on the pushed branch still runs model-signature and trusts only the seeded keys.

    Turning the check off, or trusting another key, would also make the gate
    pass: that hides the tampering instead of undoing it.
    """
    from gitops_lab.gates.config import config_from_text

    ref = ctx.pushed()
    seeded = config_from_text(_show(ctx, "gitops-lab/seed:gates.yaml")).settings["policy"]
    pushed = config_from_text(_show(ctx, f"{ref}:gates.yaml")).settings["policy"]
    if "model-signature" not in (pushed.get("checks") or []):
        return (
            False,
            "gates.yaml no longer runs the policy check model-signature: put it back, then restore the artifact",
        )
    added = sorted(set(pushed.get("trusted_keys") or []) - set(seeded.get("trusted_keys") or []))
    if added:
        return (
            False,
            f"gates.yaml trusts keys the lab did not ship ({', '.join(added)}): remove them and restore the artifact",
        )
    return True, "gates.yaml still checks model signatures against the seeded trusted keys"


def _show(ctx, spec: str) -> str | None:
    proc = ctx.git.run("show", spec, check=False)
    return proc.stdout if proc.returncode == 0 else None


def signed_with_own_key(ctx) -> tuple[bool, str]:
    """The pushed v4 is not the shipped artifact, and its signature names a key the learner added to gates.yaml.

    The gate check that follows verifies the signature itself; this one makes
    sure the pass comes from the learner's own key, not the shipped one.
    """
    import json

    from gitops_lab.gates.config import config_from_text
    from gitops_lab.model.signing import key_id

    ref = ctx.pushed()
    seeded = config_from_text(_show(ctx, "gitops-lab/seed:gates.yaml")).settings["policy"]
    pushed = config_from_text(_show(ctx, f"{ref}:gates.yaml")).settings["policy"]
    own = [k for k in pushed.get("trusted_keys") or [] if k not in (seeded.get("trusted_keys") or [])]
    if not own:
        return False, "gates.yaml trusts no key of yours yet: run `gitops-lab models keygen`"
    if _show(ctx, f"{ref}:base/models/v4.json") == _show(ctx, "gitops-lab/seed:base/models/v4.json"):
        return False, "base/models/v4.json is still the shipped artifact: change it, then `gitops-lab models sign` it"
    ids = {}
    for path in own:
        pem = _show(ctx, f"{ref}:{path}")
        try:
            ids[key_id(pem.encode())] = path
        except (AttributeError, ValueError, TypeError):
            continue  # a missing or broken key file: the policy gate names it
    try:
        hint = json.loads(_show(ctx, f"{ref}:base/models/v4.json.sig") or "")["verificationMaterial"]["publicKey"]
        hint = hint["hint"]
    except (ValueError, KeyError, TypeError):
        return False, "base/models/v4.json.sig is missing or damaged: sign v4 with `gitops-lab models sign`, push"
    if hint not in ids:
        return False, f"v4.json.sig is signed by key {hint[:16]}, not by your key ({', '.join(own)})"
    return True, f"v4 is signed by your key {ids[hint]} ({hint[:16]})"


def sign_own_model(ctx) -> None:
    """The solution: make and trust the learner's key, change v4, sign it with that key, commit and push."""
    import json

    from gitops_lab import DEFAULT_NAME
    from gitops_lab.adapters.repo import publish
    from gitops_lab.workflows.signing_key import load_or_create_key, sign_with_learner_key, trust_key

    name = ctx.name or DEFAULT_NAME
    trust_key(ctx.repo, load_or_create_key(name))
    artifact = ctx.repo / "base" / "models" / "v4.json"
    model = json.loads(artifact.read_text(encoding="utf-8"))
    model["model"]["bias"] = round(model["model"]["bias"] + 0.05, 10)
    git = ctx.git
    with publish.published_or_undone(git, "the commit of v4 signed with your key"):
        artifact.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
        sign_with_learner_key(name, [artifact])
        publish.commit(git, ["base/models/v4.json", "base/models/v4.json.sig"], "Retune v4 and sign it with my key\n")
        publish.push(git)
