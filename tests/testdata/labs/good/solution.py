"""The escape hatch: a solution written in Python, in the lab's own folder."""

from gitops_lab.labs.actions import do_commit_file


def write_note(ctx):
    do_commit_file(ctx, {"path": "NOTES.md", "content": "dev runs v3\n", "message": "Add a note"})
