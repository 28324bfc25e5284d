"""A class: many learners on one shared cluster, each an isolated tenant.

A layer of its own, above labs/ (it drives a learner's labs through
``labs.api``) and below cli/. One module a job:

    record.py   the class record (class.json), its Git server, the Git users, where things are
    roster.py   who is in the class
    tenant.py   one learner's tenant: its template, its objects and repository, opening it, deleting it
    kits.py     the learner kit, and `class join` (the learner's side)
    create.py   `class create`, a list of named steps
    delete.py   `class delete`, a list of named steps
    status.py   `class status`
    reset.py    `class reset`, under one deadline for the whole class
    report.py   `class report`: each learner's evidence for the assessments (assessment/evidence.py)

The instructor's side lives in the state folder of the environment name
(``--name``, default gitops-lab)::

    <name>/class/class.json              the class: engine, cluster, Git server, learners
    <name>/class/credentials.json        Git users (0600): instructor, engines, each learner
    <name>/class/learners/<learner>/     the instructor's view of a learner: state.json
                                         (a tenant environment), repo/ (a clone), labs.json
    <name>/class/kits/<learner>/         the learner kit: kubeconfig and kit.json (0600)
    <name>/class/backups/                repository bundles kept by `class delete`

A learner's environment is an ordinary EnvironmentState whose ``tenant`` names
the learner: every command (status, promote, rollback, lab ...) runs unchanged
on it, for the instructor here and for the learner after `class join`.
"""
