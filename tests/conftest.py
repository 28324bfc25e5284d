"""Shared pytest configuration. Keep each part in its own clearly marked section."""

from __future__ import annotations

# --------------------------------------------------------------------------- #
# Testbed (issue 3): fixtures testbed_cluster, testbed_git, testbed_flux,
# testbed_argocd; skip of @pytest.mark.testbed tests when the testbed is not
# built; log tails on failure; a closing line saying whether e2e tests ran.
# Details: tests/testbed/README.md
# --------------------------------------------------------------------------- #
from testbed.fixtures import (  # noqa: F401  (fixtures are found by name)
    testbed_argocd,
    testbed_cluster,
    testbed_flux,
    testbed_git,
    testbed_workdir,
)
from testbed.plugin import (  # noqa: F401  (hooks are found by name)
    pytest_collection_modifyitems,
    pytest_runtest_logreport,
    pytest_runtest_makereport,
    pytest_terminal_summary,
)
