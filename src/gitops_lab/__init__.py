"""gitops-lab: a GitOps lab environment for CI/CD of machine-learning models."""

__version__ = "0.1.0"
#: The environment (kind cluster, state folder) a command works on without --name; here rather than in
#: state.py so `gitops-lab --help` can show it without loading what state.py needs.
DEFAULT_NAME = "gitops-lab"
