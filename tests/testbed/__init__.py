"""The testbed: a real control plane plus real Flux and Argo CD controllers,
run as host processes from binaries that tests/testbed/build.py put in a cache.

One module per job:

- ``binaries``: where build.py put the binaries and CRDs, and what is missing;
- ``processes``: component processes, free ports, ``wait_until``;
- ``pki``: certificates and the kubeconfig;
- ``cluster``: the control plane (``start_cluster()``);
- ``engines``: Flux and Argo CD controllers (``start_flux()``, ``start_argocd()``);
- ``watching``: ``watch_until``, a bounded read-then-watch for tests;
- ``fixtures``: the session-scoped pytest fixtures; ``plugin``: the pytest hooks
  (both registered by tests/conftest.py's ``pytest_plugins``).

The Git server the engines pull from is tests/helpers/gitservers.py's ``GitHttpServer``.

Each piece works outside pytest too and has a ``stop()``.

Environment:
- GITOPS_LAB_TESTBED_CACHE: where build.py put the binaries (see build.py).
- GITOPS_LAB_TESTBED_KEEP=1: leave everything running at the end of the
  session and print the kubeconfig, the pids and how to stop them.
"""
