"""A stand-in `kind` on PATH that records its arguments and plays back outputs
recorded from a real kind v0.30.0 (tests/testdata/kind/). Where kind would
write a kubeconfig (create, export), it writes one shaped like kind's."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "testdata" / "kind"

STANDIN = r"""#!{python}
import json, os, sys
from pathlib import Path
state = Path(os.environ["KIND_STANDIN_DIR"])
args = sys.argv[1:]
with open(state / "calls.jsonl", "a") as fh:
    fh.write(json.dumps(args) + "\n")
script = json.loads((state / "script.json").read_text())
key = " ".join(a for a in args[:2] if not a.startswith("-"))
queue = script.get(key) or script.get(args[0] if args else "")
if not queue:
    sys.stderr.write("stand-in: no recording for %r\n" % args); sys.exit(99)
step = queue.pop(0) if len(queue) > 1 else queue[0]
(state / "script.json").write_text(json.dumps(script))
data = Path(os.environ["KIND_TESTDATA"])
if step.get("recording"):
    sys.stdout.write((data / (step["recording"] + ".stdout")).read_text())
    sys.stderr.write((data / (step["recording"] + ".stderr")).read_text())
    rc = int((data / (step["recording"] + ".rc")).read_text().strip())
else:
    rc = step.get("rc", 0)
if step.get("write_kubeconfig") and rc == 0:
    path = args[args.index("--kubeconfig") + 1]
    name = args[args.index("--name") + 1]
    Path(path).write_text(os.environ["KIND_KUBECONFIG_TEXT"].replace("NAME", name))
sys.exit(rc)
"""

KUBECONFIG = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: dGVzdA==
    server: https://127.0.0.1:39213
  name: kind-NAME
contexts:
- context:
    cluster: kind-NAME
    user: kind-NAME
  name: kind-NAME
current-context: kind-NAME
kind: Config
preferences: {}
users:
- name: kind-NAME
  user:
    client-certificate-data: dGVzdA==
    client-key-data: dGVzdA==
"""


class StandIn:
    def __init__(self, folder: Path):
        self.folder = folder

    def script(self, **responses: list[dict]) -> None:
        # keyword keys: get_clusters -> "get clusters", load_image_archive -> "load image-archive"
        data = {k.replace("_", " ", 1).replace("_", "-"): v for k, v in responses.items()}
        (self.folder / "script.json").write_text(json.dumps(data))

    @property
    def calls(self) -> list[list[str]]:
        path = self.folder / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def kind_standin(tmp_path, monkeypatch) -> StandIn:
    bin_dir, state = tmp_path / "bin", tmp_path / "standin"
    bin_dir.mkdir()
    state.mkdir()
    exe = bin_dir / "kind"
    exe.write_text(STANDIN.replace("{python}", sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KIND_STANDIN_DIR", str(state))
    monkeypatch.setenv("KIND_TESTDATA", str(DATA))
    monkeypatch.setenv("KIND_KUBECONFIG_TEXT", KUBECONFIG)
    monkeypatch.setenv("GITOPS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    standin = StandIn(state)
    standin.script(version=[{"recording": "version"}])
    return standin
