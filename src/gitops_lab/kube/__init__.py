"""Kubernetes access: client construction, server-side apply, watch-based waits.

Everything here imports the kubernetes client lazily, inside functions, so the
CLI's --help never pays for it.
"""
