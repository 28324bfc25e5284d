"""The gitops-lab command line."""
from gitops_lab.cli.main import main  # noqa: F401
