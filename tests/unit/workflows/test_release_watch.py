"""The release automation stopped, restarted and run twice (issue 23's findings), on real Git remotes,
real model-server processes (tests/helpers/localengine.py) and, for the lock, real processes.

Each test is one finding of the capstone's walk-through:
- a watch restarted after a push made while it was stopped releases that push;
- only one release acts at a time, and a dead holder's lock is taken over, saying so;
- a release stopped mid-way (the terminal closed) is finished by the next one, and
  `release status` says so meanwhile;
- a rollback someone else already made is named, not "None";
- a release's verification evidence counts only its own requests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers.gitutil import git, remote_version
from helpers.localengine import LocalEngine, learner_sets_dev

import gitops_lab
from gitops_lab.adapters.repo.approval import record_approval
from gitops_lab.errors import ReleaseInProgress, VerificationFailed
from gitops_lab.deadline import Deadline
from gitops_lab.reporter import Reporter
from gitops_lab.signals import Terminated, sigterm_like_sigint
from gitops_lab.state import EnvironmentState
from gitops_lab.workflows.release import release_once, release_status, watch_once, watch_start
from gitops_lab.workflows.release_lock import release_lock

from helpers.renderer import needs_kustomize

pytestmark = needs_kustomize  # staging's and prod's gates render the overlays

NAME = "gitops-lab"  # the default environment, whose state folder holds the release lock
APPROVER = "Rita <rita@example.com>"


@pytest.fixture
def engine(local_engine):
    return local_engine


def learner_clone(tmp_path: Path, remote: Path) -> Path:
    clone = tmp_path / "learner"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    git(clone, "config", "user.name", "Lee Learner")
    git(clone, "config", "user.email", "lee@example.com")
    return clone


def hang_up_when(engine: LocalEngine, env: str, version: str, before: bool = False) -> None:
    """The terminal closes (SIGHUP to this process) when the engine is asked to serve ``version`` in ``env``."""
    original = engine.wait

    def wait(e, commit, v, deadline, reporter):
        if before and (e, v) == (env, version):
            os.kill(os.getpid(), signal.SIGHUP)
        original(e, commit, v, deadline, reporter)
        if (e, v) == (env, version):
            os.kill(os.getpid(), signal.SIGHUP)

    engine.wait = wait  # type: ignore[method-assign]  # the test's engine stops the watch mid-wait


def test_a_restarted_watch_releases_a_push_made_while_it_was_stopped(lab, engine, tmp_path):
    wc, remote = lab
    clone = learner_clone(tmp_path, remote)
    started = git(remote, "rev-parse", "main")
    learner_sets_dev(clone, "v4")
    first = watch_once(Reporter(), wc, engine.deployment(), 300, started)
    assert isinstance(first.error, VerificationFailed)  # the watch handled v4: rolled back in dev

    # The watch is stopped; meanwhile the learner pushes v5.
    git(clone, "pull", "-q", "--ff-only")
    v5 = learner_sets_dev(clone, "v5")
    start = watch_start(wc, None)  # a new watch, no --since
    assert git(wc, "merge-base", "--is-ancestor", start, v5) == "" and start != v5
    released = watch_once(Reporter(), wc, engine.deployment(), 300, start)
    assert released.trigger == v5 and released.error is None
    assert [s.outcome for s in released.result.stages] == ["verified", "verified", "awaiting-approval"]

    # Stopped again while prod waits for its approval; the approval is pushed; a new watch continues.
    record_approval(wc, "prod", "v5", by=APPROVER)
    again = watch_once(Reporter(), wc, engine.deployment(), 300, watch_start(wc, None))
    assert again.trigger == v5
    assert isinstance(again.error, VerificationFailed)
    assert again.error.message.startswith("prod serving v5 failed verification: accuracy")
    assert remote_version(remote, "prod") == "v1" and engine.applied[-1] == ("prod", "v1")
    # And the next start finds nothing left to do.
    assert watch_once(Reporter(), wc, engine.deployment(), 300, watch_start(wc, None)).trigger is None


HOLD = """
import sys
from gitops_lab.reporter import reporter_for
from gitops_lab.workflows.release_lock import release_lock

with release_lock("gitops-lab", "gitops-lab release --watch", reporter_for("text")) as lock:
    if lock.interrupted is not None:
        print("resumes " + lock.interrupted.describe(), flush=True)
    lock.acting(sys.argv[1], "v5", "rolling prod back after its verification failed")
    print("held", flush=True)
    sys.stdin.read()
"""


def python_process(*args: str, **kwargs) -> subprocess.Popen:
    src = str(Path(gitops_lab.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src}
    return subprocess.Popen([sys.executable, *args], env=env, text=True, **kwargs)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    proc = python_process("-m", "gitops_lab", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def hold_the_lock(trigger: str) -> tuple[subprocess.Popen, str]:
    holder = python_process("-c", HOLD, trigger, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert holder.stdout is not None
    lines: list[str] = []
    while not lines or lines[-1] != "held":
        line = holder.stdout.readline()
        assert line, f"the holder exited: {holder.communicate(timeout=30)}"
        lines.append(line.strip())
    return holder, "\n".join(lines)


def test_a_second_release_refuses_naming_the_first_and_a_dead_holder_is_taken_over(lab, tmp_path):
    wc, remote = lab
    EnvironmentState(name=NAME, repo_path=str(wc), engine="flux", provider="existing").save()
    trigger = git(remote, "rev-parse", "main")
    holder, _ = hold_the_lock(trigger)
    try:
        # A second `gitops-lab release`, a real process: refused, naming the first, before touching anything.
        second = run_cli("release", "--repo", str(wc))
        assert second.returncode == 1, second.stderr
        assert second.stderr.startswith(
            f"error: another release acts on this lab: pid {holder.pid} on {os.uname().nodename}, since "
        )
        assert "(gitops-lab release --watch), running the release of v5" in second.stderr
        assert "while rolling prod back after its verification failed; let it finish" in second.stderr
        assert git(remote, "rev-parse", "main") == trigger
        status = json.loads(run_cli("release", "status", "--repo", str(wc), "--output", "json").stdout)
        assert status["lock"]["held"] and status["lock"]["pid"] == holder.pid and status["interrupted"] is None
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the lock's record says it never let go
        holder.communicate(timeout=30)

    shown = run_cli("release", "status", "--repo", str(wc))
    assert shown.returncode == 0, shown.stderr
    assert f"release lock: free (last held by pid {holder.pid} on " in shown.stdout
    assert "which never let go" in shown.stdout
    assert "interrupted: the release of v5 (trigger " in shown.stdout
    assert "`gitops-lab release` (or `gitops-lab release --watch`) finishes it" in shown.stdout

    successor, said = hold_the_lock(trigger)
    try:
        assert said.startswith(f"resumes the release of v5 (trigger {trigger[:7]}), while rolling prod back")
    finally:
        _, err = successor.communicate(input="", timeout=30)  # end of its stdin: it lets go
    assert f"taking over the release lock of pid {holder.pid} on " in err
    assert "that process is gone without letting go" in err
    assert successor.returncode == 0


def test_a_release_stopped_while_prod_is_verified_is_finished_by_the_next_watch(lab, engine):
    wc, remote = lab
    trigger = learner_sets_dev(wc, "v5")
    record_approval(wc, "prod", "v5", by=APPROVER)
    hang_up_when(engine, "prod", "v5")  # prod serves v5, then the terminal closes: nothing verified it
    with sigterm_like_sigint(), pytest.raises(Terminated):
        with release_lock(NAME, "gitops-lab release --watch", Reporter()) as lock:
            watch_once(Reporter(), wc, engine.deployment(), 300, None, lock)
    assert remote_version(remote, "prod") == "v5" and engine.applied[-1] == ("prod", "v5")

    status = release_status(wc, NAME)
    assert status["interrupted"]["trigger"] == trigger and status["interrupted"]["step"] == "releasing to prod"
    assert not status["lock"]["held"] and not status["lock"]["stale"]  # it let go, saying what it left

    engine.wait = LocalEngine.wait.__get__(engine)
    with release_lock(NAME, "gitops-lab release --watch", Reporter()) as lock:
        assert lock.interrupted is not None and lock.interrupted.trigger == trigger
        done = watch_once(Reporter(), wc, engine.deployment(), 300, watch_start(wc, None), lock)
    assert isinstance(done.error, VerificationFailed)
    assert done.error.message.startswith("prod serving v5 failed verification: accuracy")
    assert remote_version(remote, "prod") == "v1" and engine.applied[-1] == ("prod", "v1")
    after = release_status(wc, NAME)
    assert after["interrupted"] is None
    assert after["actions"][0]["action"] == "rollback" and after["actions"][0]["trigger"] == trigger
    assert after["actions"][0]["evidence"]["Verify-Accuracy"].startswith("fail (live accuracy 0.6842")


def test_a_rollback_pushed_but_not_yet_served_when_stopped_is_waited_for_by_the_next_release(lab, engine):
    wc, remote = lab
    learner_sets_dev(wc, "v4")
    hang_up_when(engine, "dev", "v2", before=True)  # the revert is pushed; the terminal closes before dev serves it
    with sigterm_like_sigint(), pytest.raises(Terminated):
        release_once(NAME, Reporter(), wc, engine.deployment, Deadline(300), "gitops-lab release")
    assert remote_version(remote, "dev") == "v2" and engine.applied[-1] == ("dev", "v4")  # still serving v4

    engine.wait = LocalEngine.wait.__get__(engine)
    with pytest.raises(VerificationFailed) as caught:
        release_once(NAME, Reporter(), wc, engine.deployment, Deadline(300), "gitops-lab release")
    rollback = git(remote, "rev-parse", "main")
    assert caught.value.one_line().startswith(
        f"dev was rolled back (verification failed: accuracy (live accuracy 0.5172 < 0.7776 (recorded 0.8276 - 0.05))) "
        f"in {rollback[:7]}, and dev serves v2 again"
    )
    assert engine.applied[-1] == ("dev", "v2")
    assert git(remote, "rev-list", "--count", "main") == git(wc, "rev-list", "--count", "HEAD")  # no second revert


def test_a_rollback_made_meanwhile_is_named_not_none(lab, engine, cli, tmp_path):
    wc, remote = lab
    clone = learner_clone(tmp_path, remote)
    learner_sets_dev(clone, "v4")
    original = engine.wait

    def someone_rolls_back_while_dev_is_verified(env, commit, version, deadline, reporter):
        original(env, commit, version, deadline, reporter)
        if version == "v4":
            git(clone, "pull", "-q", "--ff-only")
            assert cli("rollback", "--env", "dev", "--repo", str(clone)).exit_code == 0

    engine.wait = someone_rolls_back_while_dev_is_verified
    with pytest.raises(VerificationFailed) as caught:
        release_once(NAME, Reporter(), wc, engine.deployment, Deadline(300), "gitops-lab release")
    theirs = git(remote, "rev-parse", "main")
    line = caught.value.one_line()
    assert "None" not in line
    assert f"rolled back to v2 in {theirs[:7]} (a rollback made meanwhile), and dev serves v2 again" in line


def test_a_releases_evidence_counts_only_its_own_requests(lab, engine, tmp_path):
    wc, remote = lab
    learner_sets_dev(wc, "v4")
    second_copy = tmp_path / "second"
    git(tmp_path, "clone", "-q", str(remote), str(second_copy))
    outcome: list[BaseException] = []
    threads: list[threading.Thread] = []
    second_verifies = threading.Event()
    original = engine.wait

    def second() -> None:
        try:
            release_once(NAME, Reporter(), second_copy, engine.deployment, Deadline(300), "second")
        except BaseException as exc:  # the test asserts which
            outcome.append(exc)

    def two_releases_verify_dev_together(env, commit, version, deadline, reporter):
        original(env, commit, version, deadline, reporter)
        if threading.current_thread() is not threading.main_thread():
            second_verifies.set()  # the second release is about to verify what dev serves
        elif version == "v4" and not threads:
            # A second `gitops-lab release` starts while the first one is about to verify dev;
            # the first goes on once the second verifies too (or has stopped).
            threads.append(threading.Thread(target=second))
            threads[0].start()
            while not second_verifies.wait(0.05) and threads[0].is_alive():
                pass

    engine.wait = two_releases_verify_dev_together
    with pytest.raises(VerificationFailed):
        release_once(NAME, Reporter(), wc, engine.deployment, Deadline(300), "first")
    threads[0].join(timeout=300)
    evidence = [
        line
        for line in git(remote, "log", "--format=%(trailers:key=Verify-Error-Rate,valueonly)", "main").splitlines()
        if line
    ]
    # One rollback, whose evidence is its own 45 requests (5 batches of the 116 held-out rows + 40 of load).
    assert evidence == ["pass (0.00% of 45 /predict requests failed (max 1.00%))"]
    [refused] = outcome
    assert isinstance(refused, ReleaseInProgress) and f"pid {os.getpid()} on " in refused.message


def test_the_watch_stopped_by_sighup_mid_release_says_so_and_the_next_release_finishes_it(
    lab, engine, cli, monkeypatch
):
    from gitops_lab.workflows import environment, release

    wc, remote = lab
    EnvironmentState(name=NAME, repo_path=str(wc), engine="flux", provider="existing").save()
    # The cluster is the engine's stand-in: real model-server processes, one per environment.
    monkeypatch.setattr(environment, "open_environment", lambda *args: None)
    monkeypatch.setattr(release, "cluster_deployment", lambda lab: engine.deployment())
    trigger = learner_sets_dev(wc, "v5")
    record_approval(wc, "prod", "v5", by=APPROVER)
    hang_up_when(engine, "prod", "v5")

    watched = cli("release", "--watch", "--interval", "0.5", "--repo", str(wc))
    assert watched.exit_code == 129  # 128 + SIGHUP: not a clean end
    assert (
        f"error: the watch was stopped by SIGHUP (the terminal closed) during the release of v5 (trigger "
        f"{trigger[:7]}), while releasing to prod; `gitops-lab release` (or a new `gitops-lab release --watch`) "
        "finishes it; `gitops-lab release status` shows it"
    ) in watched.stderr
    shown = cli("release", "status", "--repo", str(wc))
    assert f"interrupted: the release of v5 (trigger {trigger[:7]}) stopped while releasing to prod" in shown.stdout

    engine.wait = LocalEngine.wait.__get__(engine)
    finished = cli("release", "--repo", str(wc))
    assert finished.exit_code == 4
    assert f"finishing the release of v5 (trigger {trigger[:7]}), while releasing to prod" in finished.stderr
    assert "error: prod serving v5 failed verification: accuracy" in finished.stderr
    assert remote_version(remote, "prod") == "v1"
    assert "interrupted" not in cli("release", "status", "--repo", str(wc)).stdout


def test_the_watch_stopped_between_releases_exits_0_and_lets_go(lab, engine, cli, monkeypatch):
    from gitops_lab.workflows import environment, release

    wc, _ = lab
    EnvironmentState(name=NAME, repo_path=str(wc), engine="flux", provider="existing").save()
    monkeypatch.setattr(environment, "open_environment", lambda *args: None)
    monkeypatch.setattr(release, "cluster_deployment", lambda lab: engine.deployment())
    # Whenever it lands (a pass or the wait between passes), no release is running: a clean end.
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
    watched = cli("release", "--watch", "--interval", "0.5", "--repo", str(wc))
    assert watched.exit_code == 0, watched.stderr
    assert watched.stderr.rstrip().endswith("stopped watching")
    assert engine.applied == []
    lock = release_status(wc, NAME)["lock"]
    assert lock["held"] is False and lock["stale"] is False and lock["acting"] is None


def test_an_interrupted_release_from_another_history_is_forgotten_saying_so(lab, engine):
    wc, remote = lab

    class Said(Reporter):
        def __init__(self):
            self.lines: list[str] = []

        def warn(self, message: str) -> None:
            self.lines.append(message)

    with release_lock(NAME, "gitops-lab release", Reporter()) as lock:
        lock.acting("0123456789abcdef0123456789abcdef01234567", "v5", "releasing to prod")  # then killed
    said = Said()
    with release_lock(NAME, "gitops-lab release --watch", said) as lock:
        done = watch_once(said, wc, engine.deployment(), 300, git(remote, "rev-parse", "main"), lock)
    assert done.trigger is None and done.error is None and engine.applied == []
    assert said.lines == [
        f"forgetting the release of v5 (trigger 0123456), while releasing to prod: 0123456 is not in {wc}'s history"
    ]
    assert release_status(wc, NAME)["interrupted"] is None
