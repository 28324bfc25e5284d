"""The few typed errors lower layers raise. Only the CLI turns them into messages.

Every error carries a one-line message that names the problem, and where there
is one, a fix. The CLI prints ``message`` (and ``fix``) on one line of stderr.
"""

from __future__ import annotations


class GitOpsLabError(Exception):
    """Base class: a problem the user can act on."""

    exit_code = 1
    #: The backup ref of a commit a Git write made but could not publish (set by
    #: ``publish.published_or_undone`` when it undid the write), else None.
    unpublished: str | None = None

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def one_line(self) -> str:
        text = self.message.rstrip(".")
        if self.fix:
            # "Run x" reads on after a semicolon as "run x"; a name in capitals (DOCKER_HOST, PATH) keeps its case.
            word = self.fix.split()[0] if self.fix.split() else ""
            fix = self.fix if len(word) > 1 and word.isupper() else self.fix[0].lower() + self.fix[1:]
            text = f"{text}; {fix}"
        return " ".join(text.split())


class UsageError(GitOpsLabError):
    """The user asked for something that cannot be: unknown env, bad version."""

    exit_code = 2


class NotFound(GitOpsLabError):
    """A named thing (environment, version, repo, object) does not exist."""

    exit_code = 2


class RepoStateError(GitOpsLabError):
    """The working copy is not in a state the operation can safely start from."""


class DamagedFile(RepoStateError):
    """A file in the working copy that gitops-lab reads is damaged: not parseable, the wrong shape.

    Exit code 2, as every damaged or unreadable file (README, "Errors and exit codes").
    """

    exit_code = 2


class GitError(GitOpsLabError):
    """A git command failed; carries the command and git's own message."""


class ClusterError(GitOpsLabError):
    """The Kubernetes API or a cluster provider failed."""


class EngineError(GitOpsLabError):
    """Argo CD or Flux is missing, broken, or reports a failure."""


class DownloadError(GitOpsLabError):
    """A pinned download (kind, an engine's release manifest) could not be fetched, or is not the pinned file."""


class ForgeError(GitOpsLabError):
    """The forge (Gitea) refused a request or could not be reached; carries its status and message."""

    def __init__(self, message: str, fix: str | None = None, status: int | None = None):
        super().__init__(message, fix)
        self.status = status


class WaitTimeout(GitOpsLabError):
    """A wait ran out of time. Says what was expected and what was last seen."""

    exit_code = 3


class PreflightError(GitOpsLabError):
    """Something on this machine would stop `up` (Docker missing, ports taken)."""


class DesignCheckFailed(GitOpsLabError):
    """A pipeline design document disagrees with its repository, or is not finished; ``report`` lists why."""

    exit_code = 4

    def __init__(self, message: str, fix: str | None = None, report: object | None = None):
        super().__init__(message, fix)
        self.report = report


class GateFailed(GitOpsLabError):
    """A validation gate refused a promotion; the repository was left unchanged.

    ``results`` holds every gate's verdict (``gitops_lab.gates.GateResult``);
    ``version`` the candidate they judged.
    """

    exit_code = 4

    def __init__(self, message: str, fix: str | None = None, results: list | None = None, version: str | None = None):
        super().__init__(message, fix)
        self.results = list(results or [])
        self.version = version


class VerificationFailed(GateFailed):
    """What an environment serves failed post-deploy verification (exit code 4).

    ``results`` holds every check's verdict. Raised after the change is live; when
    the automated release rolled the change back, the message says so.
    """


class RollbackFailed(GitOpsLabError):
    """Verification failed and the automatic rollback could not finish.

    The message names the failed check, what the rollback did and did not do,
    and where the revert commit is kept, so nothing is lost.
    """


class Interrupted(GitOpsLabError):
    """SIGINT or SIGTERM stopped a command; says what was left and how to finish.

    The exit code is 128 + the signal: 130 for SIGINT, 143 for SIGTERM.
    """

    def __init__(self, message: str, fix: str | None = None, exit_code: int = 130):
        super().__init__(message, fix)
        self.exit_code = exit_code


class ReleaseInProgress(GitOpsLabError):
    """Another `gitops-lab release` (typed or watching) holds the lab's release lock; names it."""
