"""gitops-lab: a GitOps lab environment for CI/CD of machine-learning models."""

__version__ = "0.1.0"
