"""`python -m gitops_lab.incluster`: the release automation's process, in its pod.

Configured by the Deployment's environment (``release_agent.AgentConfig``);
logs one line per step on stdout (`kubectl -n gitops-lab-release logs
deploy/release-automation`). SIGTERM (the pod deleted, a new image rolled out)
ends it with 143; a release it stopped mid-way is recorded on the Lease and
finished by the next pod. A configuration it cannot use ends it with 2 and one
line naming the variable.
"""

from __future__ import annotations

import sys
import threading

from gitops_lab import signals
from gitops_lab.errors import GitOpsLabError
from gitops_lab.kube.client import connect_in_cluster
from gitops_lab.reporter import PlainReporter
from gitops_lab.workflows.release_agent import AgentConfig, run_agent


def main() -> int:
    reporter = PlainReporter(sys.stdout)
    try:
        with signals.sigterm_like_sigint():
            config = AgentConfig.from_environ()
            run_agent(config, connect_in_cluster(), reporter, threading.Event())
    except GitOpsLabError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as stop:
        reporter.info(f"stopped by {signals.signal_name(stop)}")
        return signals.exit_code(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
