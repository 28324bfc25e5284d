

# --------------------------------------------------------------------------- #
# class status: an environment is ok, reconciling or failing
# --------------------------------------------------------------------------- #
def _report(**changes):
    from gitops_lab.workflows.status import EnvironmentReport

    fields = dict(environment="dev", namespace="a-dev", engine="flux", commit="abc", sync="Applied", health="Ready",
                  version="v2", git_version="v2", replicas_ready=1, replicas_desired=1, message="")
    return EnvironmentReport(**{**fields, **changes})


@pytest.mark.parametrize("changes, state", [
    ({}, "ok"),
    ({"health": "Unknown"}, "reconciling"),  # Flux while it re-reads Git: the cluster still serves Git's version
    ({"sync": "Synced", "health": "Progressing"}, "reconciling"),
    ({"health": "Unknown", "replicas_ready": 0}, "failing"),
    ({"health": "Unknown", "version": "v3"}, "failing"),  # drift is never "reconciling"
    ({"health": "NotReady"}, "failing"),
    ({"sync": "Failed", "health": "Unknown"}, "failing"),
])
def test_environment_state_in_class_status(changes, state):
    from gitops_lab.workflows.classroom import _env_state

    assert _env_state(_report(**changes)) == state
