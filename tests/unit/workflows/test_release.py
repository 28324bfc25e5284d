"""Automated promotion with automatic rollback (`gitops-lab release`), on real Git remotes and
real model-server processes.

The stand-in for the engine, ``LocalEngine`` (tests/helpers/localengine.py),
does what the engine does where it matters here: when asked to wait for a
commit, it reads the environment's version from Git at that commit and
(re)starts a model server process serving it. Verification then talks to that
process over HTTP, exactly as it talks to a pod through the API server's proxy
on a cluster.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.gitutil import git, last_trailers, remote_version
from helpers.localengine import LocalEngine, learner_sets_dev
from helpers.renderer import needs_kustomize

from gitops_lab.adapters.repo import Git
from gitops_lab.adapters.repo.history import history  # the package attribute `history` is its submodule once loaded
from gitops_lab.adapters.repo.approval import record_approval
from gitops_lab.adapters.repo.layout import overlay_path
from gitops_lab.deadline import Deadline
from gitops_lab.errors import GateFailed, RollbackFailed, VerificationFailed
from gitops_lab.reporter import Reporter
from gitops_lab.workflows.release import find_trigger, run_release, watch_once

pytestmark = needs_kustomize  # staging's and prod's gates render the overlays


@pytest.fixture
def engine(local_engine):
    return local_engine


def release(wc: Path, engine: LocalEngine, trigger: str | None = None):
    return run_release(Reporter(), wc, engine.deployment(), Deadline(300), trigger)


def trailers_of(remote: Path, rev: str = "main") -> dict[str, str]:
    return dict(line.split(": ", 1) for line in last_trailers(remote, rev) if ": " in line)


def test_a_good_version_is_promoted_and_verified_up_to_prods_approval_then_to_prod(lab, engine):
    wc, remote = lab
    learner_sets_dev(wc, "v1")
    trigger = learner_sets_dev(wc, "v2")
    result = release(wc, engine)
    assert result.trigger == trigger and result.version == "v2"
    assert [(s.environment, s.outcome) for s in result.stages] == [
        ("dev", "verified"),
        ("staging", "verified"),
        ("prod", "awaiting-approval"),
    ]
    assert "gitops-lab approve --env prod --version v2" in result.stages[-1].summary
    assert remote_version(remote, "staging") == "v2" and remote_version(remote, "prod") == "v1"
    # The promotion carries what started the release and dev's verification as evidence.
    promoted = trailers_of(remote)
    assert promoted["Gitops-Lab-Action"] == "promote" and promoted["Release-Trigger"] == trigger
    assert promoted["Verify-Accuracy"].startswith("pass (live accuracy 0.8276")

    record_approval(wc, "prod", "v2", by="Rita <rita@example.com>")
    resumed = release(wc, engine)
    assert resumed.complete
    assert [(s.environment, s.outcome) for s in resumed.stages] == [
        ("dev", "verified"),
        ("staging", "verified"),
        ("prod", "verified"),
    ]
    assert remote_version(remote, "prod") == "v2"
    assert trailers_of(remote)["Verify-Version"].startswith("pass")  # staging's verification, in prod's promotion
    assert engine.applied[-1] == ("prod", "v2")


def test_a_version_that_fails_live_is_reverted_with_its_evidence(lab, engine):
    wc, remote = lab
    trigger = learner_sets_dev(wc, "v4")
    with pytest.raises(VerificationFailed) as caught:
        release(wc, engine)
    line = caught.value.one_line()
    assert caught.value.exit_code == 4
    assert line.startswith("dev serving v4 failed verification: accuracy (live accuracy 0.5172 < 0.7776")
    assert "rolled back to v2 in" in line and "dev serves v2 again" in line
    # Git: a revert of the learner's commit, pushed, with the reason and every check's verdict.
    assert remote_version(remote, "dev") == "v2"
    found = trailers_of(remote)
    assert found["Gitops-Lab-Action"] == "rollback" and found["Reverts"] == trigger
    assert found["Rollback-Reason"].startswith("verification failed: accuracy (live accuracy 0.5172")
    assert found["Rolled-Back-By"] == "gitops-lab release (automatic)" and found["Release-Trigger"] == trigger
    assert found["Verify-Accuracy"].startswith("fail (") and found["Verify-Error-Rate"].startswith("pass (")
    # The engine was asked for v4, then for v2 again; staging and prod were never touched.
    assert engine.applied == [("dev", "v4"), ("dev", "v2")]
    assert remote_version(remote, "staging") == "v1"
    # history shows it, and why.
    [entry] = [e for e in history(wc, "dev") if e.action == "rollback"]
    assert entry.subject == "Roll back dev: v4 failed verification (accuracy)"
    assert entry.version == "v2" and entry.previous == "v4"
    assert entry.trailers["Rollback-Reason"].startswith("verification failed: accuracy")


def test_a_version_that_fails_only_on_prods_traffic_reaches_prod_and_is_reverted_there(lab, engine):
    wc, remote = lab
    trigger = learner_sets_dev(wc, "v5")
    first = release(wc, engine)
    # dev and staging replay the held-out rows, where v5 serves like v2: both verify.
    assert [(s.environment, s.outcome) for s in first.stages] == [
        ("dev", "verified"),
        ("staging", "verified"),
        ("prod", "awaiting-approval"),
    ]
    assert "accuracy pass" in first.stages[1].summary
    record_approval(wc, "prod", "v5", by="Rita <rita@example.com>")
    promotion_count = len(git(remote, "log", "--format=%H", "main").splitlines())
    with pytest.raises(VerificationFailed) as caught:
        release(wc, engine)
    line = caught.value.one_line()
    assert line.startswith("prod serving v5 failed verification: accuracy (live accuracy 0.6842 < 0.7776")
    assert "rolled back to v1 in" in line and "prod serves v1 again" in line
    # Git: prod's promotion, then its revert with the evidence; dev and staging keep v5.
    assert remote_version(remote, "prod") == "v1"
    assert (remote_version(remote, "dev"), remote_version(remote, "staging")) == ("v5", "v5")
    promotion, _rollback = git(remote, "log", "-2", "--format=%H", "main").splitlines()[::-1]
    assert len(git(remote, "log", "--format=%H", "main").splitlines()) == promotion_count + 2
    found = trailers_of(remote)
    assert found["Gitops-Lab-Action"] == "rollback" and found["Reverts"] == promotion
    assert found["Release-Trigger"] == trigger
    assert found["Rollback-Reason"].startswith("verification failed: accuracy (live accuracy 0.6842")
    assert engine.applied[-2:] == [("prod", "v5"), ("prod", "v1")]
    [entry] = [e for e in history(wc, "prod") if e.action == "rollback"]
    assert entry.subject == "Roll back prod: v5 failed verification (accuracy)"
    assert (entry.previous, entry.version) == ("v5", "v1")


def test_the_revert_push_hint_names_the_remote_the_lab_follows(lab, engine):
    """A remote not named origin (renamed, so main follows `upstream`): the command to push the kept
    revert names it, and works as given."""
    wc, remote = lab
    learner_sets_dev(wc, "v4")
    git(wc, "remote", "rename", "origin", "upstream")
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are frozen for the audit' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(RollbackFailed) as caught:
        release(wc, engine)
    kept = git(wc, "for-each-ref", "--format=%(refname)", "refs/gitops-lab/backup/").splitlines()[-1]
    assert f"`git -C {wc} push upstream {kept}:main`" in caught.value.one_line()
    hook.unlink()
    git(wc, "push", "-q", "upstream", f"{kept}:main")  # what the message says to do
    assert remote_version(remote, "dev") == "v2"


def test_a_promotion_that_fails_verification_in_staging_is_reverted_there(lab, engine):
    wc, remote = lab
    learner_sets_dev(wc, "v1")
    learner_sets_dev(wc, "v2")
    engine.broken.add("staging")  # staging's pods cannot load the model: /predict answers 503
    with pytest.raises(VerificationFailed, match=r"staging serving v2 failed verification: version .*error-rate"):
        release(wc, engine)
    assert remote_version(remote, "staging") == "v1" and remote_version(remote, "dev") == "v2"
    promotion, rollback = git(remote, "log", "-2", "--format=%H", "main").splitlines()[::-1]
    assert trailers_of(remote, promotion)["Gitops-Lab-Action"] == "promote"
    assert trailers_of(remote)["Reverts"] == promotion
    assert engine.applied[-1] == ("staging", "v1")


def test_when_the_revert_cannot_be_pushed_nothing_is_lost(lab, engine):
    wc, remote = lab
    learner_sets_dev(wc, "v4")
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are frozen for the audit' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = git(remote, "rev-parse", "main")
    with pytest.raises(RollbackFailed) as caught:
        release(wc, engine)
    line = caught.value.one_line()
    assert line.startswith("dev serving v4 failed verification: accuracy (live accuracy 0.5172")
    assert "the automatic rollback could not be pushed" in line and "pre-receive hook declined" in line
    assert git(remote, "rev-parse", "main") == before  # the remote has nothing half-done
    # Published or undone: the working copy is back, the revert with its evidence is on the backup ref named.
    assert git(wc, "rev-parse", "HEAD") == before and git(wc, "status", "--porcelain") == ""
    kept = git(wc, "for-each-ref", "--format=%(refname)", "refs/gitops-lab/backup/")
    assert kept and kept.splitlines()[-1] in line
    assert f"push origin {kept.splitlines()[-1]}:main" in line
    assert "Rollback-Reason: verification failed" in git(wc, "log", "-1", "--format=%B", kept.splitlines()[-1])
    hook.unlink()
    git(wc, "push", "-q", "origin", f"{kept.splitlines()[-1]}:main")  # what the message says to do
    assert remote_version(remote, "dev") == "v2"


def test_when_the_engine_is_down_the_pushed_rollback_is_named(lab, engine):
    wc, remote = lab
    learner_sets_dev(wc, "v4")
    original = engine.wait

    def wait_then_fail(env, commit, version, deadline, reporter):
        if version == "v2":
            engine.down = True
        original(env, commit, version, deadline, reporter)

    engine.wait = wait_then_fail
    with pytest.raises(RollbackFailed) as caught:
        release(wc, engine)
    line = caught.value.one_line()
    assert "failed verification: accuracy" in line
    assert "is pushed, but dev does not serve v2 again yet: the engine does not answer" in line
    assert "gitops-lab sync --env dev" in line
    assert remote_version(remote, "dev") == "v2"


def test_nothing_to_release_is_a_clear_refusal(lab, engine, cli):
    wc, _ = lab
    record_approval(wc, "prod", "v2", by="Rita <rita@example.com>")
    assert cli("promote", "--to", "prod", "--from", "dev", "--repo", str(wc)).exit_code == 0
    with pytest.raises(GateFailed, match="nothing to release: prod already runs v2, the version dev runs"):
        release(wc, engine)


def test_a_typed_release_takes_what_dev_runs_even_after_a_rollback(lab, engine):
    wc, remote = lab
    learner_sets_dev(wc, "v4")
    with pytest.raises(VerificationFailed):
        release(wc, engine)
    rollback = git(remote, "rev-parse", "main")
    result = release(wc, engine)  # dev runs v2 again, restored by the rollback: release that
    assert result.version == "v2" and result.trigger == rollback
    assert [s.outcome for s in result.stages] == ["verified", "verified", "awaiting-approval"]


def test_the_watch_releases_a_learners_push_once(lab, engine, tmp_path):
    wc, remote = lab
    start = git(remote, "rev-parse", "main")
    first = watch_once(Reporter(), wc, engine.deployment(), 300, start)
    assert first.trigger is None and engine.applied == []  # nothing pushed since the watch started

    # A learner pushes from their own clone: no command typed for the release.
    clone = tmp_path / "learner"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    git(clone, "config", "user.name", "Lee Learner")
    git(clone, "config", "user.email", "lee@example.com")
    trigger = learner_sets_dev(clone, "v4")
    done = watch_once(Reporter(), wc, engine.deployment(), 300, start)
    assert done.trigger == trigger
    assert isinstance(done.error, VerificationFailed) and "accuracy" in done.error.message
    assert remote_version(remote, "dev") == "v2"
    # Looking again does not release the same push twice.
    again = watch_once(Reporter(), wc, engine.deployment(), 300, start)
    assert again.trigger is None and engine.applied == [("dev", "v4"), ("dev", "v2")]


def test_the_watch_leaves_a_learners_unpushed_commits_unpublished(lab, engine):
    wc, remote = lab
    start = git(remote, "rev-parse", "main")
    # The learner commits v4 in the working copy the watch uses, and has not pushed yet.
    path = wc / overlay_path("dev")
    path.write_text(path.read_text().replace("model-version: v2", "model-version: v4"))
    git(wc, "commit", "-qam", "Try v4 in dev")
    mine = git(wc, "rev-parse", "HEAD")
    done = watch_once(Reporter(), wc, engine.deployment(), 300, start)
    assert done.trigger is None and engine.applied == []
    assert git(remote, "rev-parse", "main") == start  # not published for them
    assert git(wc, "rev-parse", "HEAD") == mine

    # Pushed, it is a release; a later local commit makes the pending release wait, naming it.
    git(wc, "push", "-q", "origin", "HEAD:main")
    path = wc / overlay_path("staging")
    path.write_text(path.read_text().replace("count: 1", "count: 2"))
    git(wc, "commit", "-qam", "Scale staging to 2 replicas")
    waiting = watch_once(Reporter(), wc, engine.deployment(), 300, start)
    assert waiting.trigger == mine and engine.applied == []
    assert waiting.error.one_line() == (
        f"the release of {mine[:7]} waits: {wc} has 1 commit(s) that are not pushed "
        f"({git(wc, 'rev-parse', '--short', 'HEAD')} Scale staging to 2 replicas), and a release would publish "
        "them; push them (`git push`) or set them aside (`git branch keep-mine && git reset --hard origin/main`); "
        "the watch goes on by itself"
    )
    assert git(remote, "rev-parse", "main") == mine

    git(wc, "push", "-q", "origin", "HEAD:main")
    released = watch_once(Reporter(), wc, engine.deployment(), 300, start)
    assert released.trigger == mine and isinstance(released.error, VerificationFailed)
    assert remote_version(remote, "dev") == "v2" and engine.applied == [("dev", "v4"), ("dev", "v2")]


def test_a_rollback_of_dev_does_not_start_a_release(lab, cli):
    wc, remote = lab
    learner_sets_dev(wc, "v1")
    assert cli("rollback", "--env", "dev", "--to", "v2", "--repo", str(wc)).exit_code == 0
    # The newest change to dev's version is a rollback: no release to start.
    assert find_trigger(Git(wc), "HEAD") is None
    learner_sets_dev(wc, "v4")
    assert find_trigger(Git(wc), "HEAD") == git(wc, "rev-parse", "HEAD")


def test_history_cli_shows_the_automatic_rollback_and_why(lab, engine, cli):
    wc, _ = lab
    learner_sets_dev(wc, "v4")
    with pytest.raises(VerificationFailed):
        release(wc, engine)
    text = cli("history", "--env", "dev", "--repo", str(wc)).stdout
    row = next(line for line in text.splitlines() if "Roll back dev: v4 failed verification (accuracy)" in line)
    assert row.split()[3:6] == ["rollback", "v4", "->"] and row.split()[6] == "v2"
    data = json.loads(cli("history", "--env", "dev", "--repo", str(wc), "--output", "json").stdout)
    assert data[0]["trailers"]["Rollback-Reason"].startswith("verification failed: accuracy")


def test_the_watch_loop_looks_again_only_when_the_remote_moved(lab, engine, tmp_path):
    import threading

    from gitops_lab.workflows.release import watch

    wc, remote = lab
    start = git(remote, "rev-parse", "main")
    stop = threading.Event()
    passes = []

    def on_pass(done):
        passes.append(done)
        if len(passes) == 1:
            learner_sets_dev(wc, "v4")  # a push arrives while the watch waits
        else:
            stop.set()

    watch(Reporter(), wc, engine.deployment(), 300, 0.1, start, stop, on_pass)
    assert [p.trigger for p in passes] == [None, git(remote, "rev-parse", "main~1")]
    assert isinstance(passes[1].error, VerificationFailed)
    assert passes[1].head == git(remote, "rev-parse", "main")  # the head after its own rollback


def test_release_cli_needs_an_environment_set_up_by_up(lab, cli):
    wc, _ = lab
    result = cli("release", "--repo", str(wc))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: a release needs the environments `gitops-lab up` set up, and none is "
        "known; run `gitops-lab up` first (or pass --name of the lab you set up)"
    )
    result = cli("release", "--once", "--repo", str(wc))
    assert result.exit_code == 2 and "--once and --since go with --watch" in result.stderr


def test_when_the_git_server_is_gone_before_the_revert_nothing_changes(lab, engine, tmp_path):
    wc, remote = lab
    learner_sets_dev(wc, "v4")
    original = engine.wait

    def wait_then_lose_the_remote(env, commit, version, deadline, reporter):
        original(env, commit, version, deadline, reporter)
        remote.rename(tmp_path / "gone.git")  # the Git server goes away while dev is verified

    engine.wait = wait_then_lose_the_remote
    head = git(wc, "rev-parse", "HEAD")
    with pytest.raises(RollbackFailed) as caught:
        release(wc, engine)
    line = caught.value.one_line()
    assert "failed verification: accuracy" in line and "the automatic rollback could not start" in line
    assert "nothing was changed" in line and "gitops-lab rollback --env dev" in line
    assert git(wc, "rev-parse", "HEAD") == head and git(wc, "status", "--porcelain") == ""


def test_a_custom_gate_required_for_staging_stops_the_release_by_name_and_lets_a_version_it_passes_through(lab, engine):
    """gates.yaml requires the team's segment-accuracy gate for staging: `release` refuses to promote v6 (good
    overall, bad on cool pumps), naming the gate, and promotes v2, which it passes, with its verdict recorded."""
    import yaml

    wc, remote = lab
    gates = yaml.safe_load((wc / "gates.yaml").read_text(encoding="utf-8"))
    gates["custom"] = {
        "segment-accuracy": {
            "command": ["{python}", "ci/gates/segment_accuracy.py", "--artifact", "{artifact}"]
            + ["--feature", "temperature_c", "--bands", "60,75", "--min-accuracy", "0.65"],
            "timeout": 60,
        }
    }
    gates["required"]["staging"].append("segment-accuracy")
    (wc / "gates.yaml").write_text(yaml.safe_dump(gates, sort_keys=False), encoding="utf-8")
    git(wc, "commit", "-qam", "Require accuracy on every temperature band for staging")
    git(wc, "push", "--quiet", "origin", "main")
    learner_sets_dev(wc, "v6")
    head = git(remote, "rev-parse", "main")

    with pytest.raises(GateFailed) as refused:
        release(wc, engine)

    line = refused.value.one_line()
    assert "promotion of v6 to staging blocked by 1 failing gate: segment-accuracy" in line
    assert [r.name for r in refused.value.results if not r.passed] == ["segment-accuracy"]
    assert git(remote, "rev-parse", "main") == head and remote_version(remote, "staging") == "v1"
    assert engine.applied == [("dev", "v6")]  # dev got it and verified it; staging was never asked

    learner_sets_dev(wc, "v2")
    passed = release(wc, engine)

    assert [(s.environment, s.outcome) for s in passed.stages][:2] == [("dev", "verified"), ("staging", "verified")]
    assert remote_version(remote, "staging") == "v2"
    # The promotion to staging (the last commit: prod waits for an approval) records the custom gate's verdict.
    promoted = trailers_of(remote)
    assert promoted["Gitops-Lab-Action"] == "promote"
    assert promoted["Gate-Segment-Accuracy"].startswith("pass (every temperature_c band >= 0.65")
