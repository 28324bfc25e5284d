"""The escape hatch: a solution written in Python, in the lab's own folder."""

from gitops_lab.labs.actions import do_commit_file


def write_note(ctx):
    do_commit_file(ctx, {"path": "NOTES.md", "content": "dev runs v3\n", "message": "Add a note"})


def count_setup(ctx):
    """Stands for what a setup does outside Git (a hand-scaled Deployment): one line per run."""
    marker = ctx.repo / ".git" / "gitops-lab-setup-runs"
    marker.write_text(marker.read_text() + "run\n" if marker.exists() else "run\n")
