"""The gitops-lab command line."""

try:
    from gitops_lab.cli.main import main  # noqa: F401
except KeyboardInterrupt:  # Ctrl-C while the command is still loading: nothing has happened yet
    import sys

    sys.stderr.write("error: interrupted by SIGINT (Ctrl-C) while starting; nothing was changed\n")
    raise SystemExit(130) from None
