"""Docker, as the lab reaches it: one place that connects to the daemon and words its failures.

Doctor and `up`'s preflight read `docker info` through it; `images` pulls and
saves through its client. Both say the same thing when the daemon is out of
reach, with the same fix.
"""

from __future__ import annotations

import os
import platform
from typing import Any

from gitops_lab.errors import PreflightError, WaitTimeout
from gitops_lab.deadline import within_deadline

RETRY_LONGER = "run the command again, with a larger --timeout if it has one"

DEFAULT_HOST = "unix:///var/run/docker.sock"


class DockerUnavailable(Exception):
    """The Docker daemon could not be reached; the message says why."""


def docker_host() -> str:
    """Where the SDK connects: $DOCKER_HOST, else the default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def describe_docker_error(exc: BaseException, host: str) -> str:
    """Why ``host`` did not answer, in a few words."""
    text = str(exc)
    if "PermissionError" in text or "Permission denied" in text:
        return f"permission denied on {host}"
    if "FileNotFoundError" in text or "No such file" in text:
        return f"no Docker daemon socket at {host}"
    if "ConnectionRefused" in text or "Connection refused" in text:
        return f"nothing answers at {host} (connection refused)"
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"cannot talk to Docker at {host}: {first[:200]}"


def docker_install_fix(system: str) -> str:
    """How to get a Docker daemon on ``system`` (platform.system())."""
    if system == "Linux":
        return (
            "install Docker Engine (https://docs.docker.com/engine/install/, or `sudo apt-get install docker.io`) "
            "and start it with `sudo systemctl start docker`"
        )
    return "install Docker Desktop (https://www.docker.com/products/docker-desktop/) and start it"


def _connect(timeout: int):
    """A pinged SDK client. Raises DockerUnavailable naming the host and the cause."""
    import docker  # heavy: only when Docker is used

    host = docker_host()
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception as exc:  # DockerException, or requests' connection errors, which are not
        raise DockerUnavailable(describe_docker_error(exc, host)) from exc


def docker_info() -> dict[str, Any]:
    """`docker info` through the SDK, after a ping. Raises DockerUnavailable."""
    client = _connect(timeout=10)
    try:
        return client.info()
    except Exception as exc:
        raise DockerUnavailable(describe_docker_error(exc, docker_host())) from exc
    finally:
        client.close()


def docker_client(timeout: int = 600):
    """A client for long work (pull, save): no call waits past ``timeout`` seconds or the command's
    deadline. Raises PreflightError: Docker is not reachable, and the fix."""
    seconds = within_deadline(timeout)
    if seconds <= 0:
        raise WaitTimeout("the command's deadline passed before Docker was asked", fix=RETRY_LONGER)
    try:
        return _connect(max(1, int(seconds)))
    except DockerUnavailable as exc:
        raise PreflightError(f"Docker is not reachable: {exc}", fix=docker_install_fix(platform.system())) from exc


def node_platform(client) -> str:
    """linux/<arch> of the Docker engine, which is the kind node's platform."""
    arch = str(client.info().get("Architecture", "")).lower()
    return "linux/" + {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(arch, arch)


def has_image(client, ref: str) -> bool:
    """Whether the Docker engine behind ``client`` holds the image ``ref`` (by tag or by digest)."""
    from docker.errors import ImageNotFound

    try:
        client.images.get(ref)
        return True
    except ImageNotFound:
        return False
