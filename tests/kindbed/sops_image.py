"""sops's image for the kind bed, under the name the product's Argo CD install uses
(manifests/argocd/images.yaml): the SOPS plugin's init container copies /usr/local/bin/sops from it.

Upstream (.release/Dockerfile of getsops/sops v3.13.2, in its Go module): Debian bookworm-slim with
awscli, azure-cli, curl, gnupg and vim, sops at /usr/local/bin/sops, ENTRYPOINT sops. Here: the bed's
pod base (Debian bookworm) with the testbed's sops, built from the pinned module; the cloud CLIs are
left out (the lab's plugin uses only sops and cp). Its own step, last, so building it redoes no other image.
"""

from __future__ import annotations

REPOSITORY = "ghcr.io/getsops/sops"
RECIPE = 1


def image_ref(versions: dict) -> str:
    """ghcr.io/getsops/sops:v3.13.2 for sops v3.13.2 (the name and tag the product pins by digest)."""
    return f"{REPOSITORY}:{versions['sops']['version']}"


def dockerfile(base: str) -> list[str]:
    return [f"FROM {base}", "COPY sops /usr/local/bin/sops", 'ENTRYPOINT ["sops"]']
