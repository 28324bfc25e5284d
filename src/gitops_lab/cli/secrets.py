"""`gitops-lab secrets init`: an age key for the lab, so Secrets are kept in Git only encrypted (SOPS)."""

from __future__ import annotations

import click

from gitops_lab.cli.app import Application, environment_options, pass_app


@click.group("secrets")
def command() -> None:
    """Secrets kept encrypted in Git with SOPS and age; see docs/secrets.md.

    \b
    Examples:
      gitops-lab secrets init
      sops encrypt --in-place overlays/dev/api-key.yaml
    """


@command.command("init")
@environment_options
@pass_app
def init(
    app: Application, timeout: float, kubeconfig: str | None, context: str | None, repo: str | None, output: str
) -> None:
    """Make the lab's age key, name it in .sops.yaml, and let the engine decrypt with it.

    The key pair is made once by age-keygen and kept in the environment's state
    folder (mode 0600); running again reuses it. Its public recipient goes into
    .sops.yaml in the lab repository (committed and pushed). The private key goes
    into the Secret sops-age in the engine's namespace: on Flux the lab's
    Kustomizations decrypt with it; on Argo CD the lab's Applications render
    with the config-management plugin gitops-lab-sops, whose sidecar mounts it.

    \b
    Examples:
      gitops-lab secrets init
      gitops-lab secrets init --output json
    """
    from gitops_lab.deadline import command_deadline
    from gitops_lab.state import load_state
    from gitops_lab.workflows.environment import open_environment
    from gitops_lab.workflows.secrets import init_git_side, init_secrets

    state = load_state(app.name)
    with command_deadline(timeout) as deadline:
        if state.engine:
            lab = open_environment(state, kubeconfig, context, app.repo_path(repo))
            setup = init_secrets(lab, deadline)
            engine, shown = lab.engine.name, lab.engine.display_name
        else:  # a repository without a cluster (`repo init` only): the key and .sops.yaml are all there is to do
            setup, _ = init_git_side(state.name, app.repo_path(repo), deadline)
            engine, shown = None, "no cluster"
            setup.engine_note = "none set up; `gitops-lab up` then `secrets init` again lets the engine decrypt"
    lines = [
        f"age key {'made' if setup.key_created else 'kept'}: {setup.key_path} (recipient {setup.recipient})",
        f".sops.yaml: {'committed and pushed as ' + setup.commit[:7] if setup.commit else 'already names the key'}",
        f"{shown}: {setup.engine_note}" + (f" (changed: {', '.join(setup.changed)})" if setup.changed else ""),
    ]
    app.emit(
        output,
        {
            "recipient": setup.recipient,
            "key_file": str(setup.key_path),
            "key_created": setup.key_created,
            "commit": setup.commit,
            "changed": setup.changed,
            "engine": engine,
            "decryption": setup.engine_note,
        },
        "\n".join(lines),
    )
