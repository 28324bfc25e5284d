"""What each action of the vocabulary does, one module a job: ``context`` (the LabContext every action is
given, its CheckResult and ActionFailed), ``doers`` (change Git or the cluster and wait), ``checks``
(assertions: look and return a CheckResult) and ``hooks`` (a lab's own Python function). The registry
(labs/vocabulary.py) names each function once, with its title and parameters; the runner (labs/runner.py)
dispatches through it.

This package's own names are the contract of a lab's Python hooks (labs/<id>/*.py, docs/authoring-labs.md):
they import ``LabContext``, ``CheckResult`` and ``do_commit_file`` from ``gitops_lab.labs.actions``, so
those stay here for them. The project's own code imports each name from its module.
"""

from gitops_lab.labs.actions.context import CheckResult, LabContext
from gitops_lab.labs.actions.doers import do_commit_file

__all__ = ["CheckResult", "LabContext", "do_commit_file"]
