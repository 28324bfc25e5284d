"""A Secret kept in Git only as SOPS ciphertext, for the engines' decryption tests: real sops, real age keys."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from helpers.gitutil import git
from gitops_lab.gates.ci_tools import find_tool

SOPS = find_tool("sops", "GITOPS_LAB_SOPS") or ""  # "": not installed, the tests skip
KEYGEN = find_tool("age-keygen", "GITOPS_LAB_AGE_KEYGEN") or ""
API_KEY = "sk-model-server-0d6f3e2a9b"


def commit_encrypted_secret(repo: Path, value: str, message: str, env: str = "dev") -> None:
    """Write the Secret into overlays/<env>, encrypt it in place with sops (.sops.yaml names the key), commit, push."""
    path = f"overlays/{env}/api-key.yaml"
    (repo / path).write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "model-api-key", "namespace": f"ml-{env}"},
                "type": "Opaque",
                "stringData": {"API_KEY": value},
            }
        )
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    subprocess.run([SOPS, "encrypt", "--in-place", path], cwd=repo, env=clean, check=True)
    assert value not in (repo / path).read_text()
    overlay = repo / f"overlays/{env}/kustomization.yaml"
    data = yaml.safe_load(overlay.read_text())
    if "api-key.yaml" not in data.get("resources", []):
        data["resources"] = [*data.get("resources", []), "api-key.yaml"]
        overlay.write_text(yaml.safe_dump(data, sort_keys=False))
    git(repo, "add", f"overlays/{env}")
    git(repo, "-c", "user.name=Learner", "-c", "user.email=learner@example.com", "commit", "--quiet", "-m", message)
    git(repo, "push", "--quiet", "origin", "HEAD:main")


def wrong_key(folder: Path) -> bytes:
    """A new age key the lab's files were not encrypted for."""
    path = folder / "wrong.agekey"
    subprocess.run([KEYGEN, "-o", str(path)], check=True, capture_output=True)
    return path.read_bytes()
