"""`gitops-lab models keygen|sign`: the learner's own model-signing key, trusted through Git."""

from __future__ import annotations

import click

from gitops_lab.cli.app import Application, output_option, pass_app, repo_option, timeout_option


@click.group("models")
def command() -> None:
    """Sign model artifacts with your own key, trusted by the policy gate; see docs/supply-chain.md.

    \b
    Examples:
      gitops-lab models keygen
      gitops-lab models sign base/models/v4.json
    """


@command.command("keygen")
@timeout_option(default=120, help="One deadline for the whole command: the fetch and the push.")
@repo_option
@output_option
@pass_app
def keygen(app: Application, timeout: float, repo: str | None, output: str) -> None:
    """Make your model-signing key and trust it in the lab repository.

    The P-256 key pair is made once in the environment's state folder (the
    private key 0600, never in Git); running again reuses it and changes
    nothing. Its public key is committed as base/keys/learner-<key id>.pub and
    added to gates.yaml's policy.trusted_keys and to the model server's
    trusted-keys ConfigMap, in one pushed commit.

    \b
    Examples:
      gitops-lab models keygen
      gitops-lab models keygen --output json
    """
    from gitops_lab.deadline import command_deadline
    from gitops_lab.workflows.signing_key import load_or_create_key, trust_key

    with command_deadline(timeout):
        key = load_or_create_key(app.name)
        commit = trust_key(app.repo_path(repo), key)
    lines = [
        f"signing key {'made' if key.created else 'kept'}: {key.private_path} (key {key.key_id[:16]})",
        f"{key.repo_path}: "
        + (f"trusted in gates.yaml, committed and pushed as {commit[:7]}" if commit else "already trusted"),
    ]
    app.emit(
        output,
        {
            "key_id": key.key_id,
            "key_file": str(key.private_path),
            "key_created": key.created,
            "public_key": key.repo_path,
            "commit": commit,
        },
        "\n".join(lines),
    )


@command.command("sign")
@click.argument("artifacts", nargs=-1, required=True, type=click.Path(dir_okay=False))
@output_option
@pass_app
def sign(app: Application, artifacts: tuple[str, ...], output: str) -> None:
    """Sign model artifacts with your key: writes <artifact>.sig beside each.

    Commit and push the artifact with its signature; the policy gate accepts
    it when gates.yaml trusts your key (`gitops-lab models keygen`).

    \b
    Examples:
      gitops-lab models sign base/models/v4.json
    """
    from pathlib import Path

    from gitops_lab.workflows.signing_key import sign_with_learner_key

    key, signatures = sign_with_learner_key(app.name, [Path(a) for a in artifacts])
    app.emit(
        output,
        {"key_id": key.key_id, "signed": [{"artifact": a, "signature": str(s)} for a, s in zip(artifacts, signatures)]},
        "\n".join(f"signed {a} -> {s} (key {key.key_id[:16]})" for a, s in zip(artifacts, signatures)),
    )
