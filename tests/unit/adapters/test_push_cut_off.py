"""A failed push whose connection to the remote broke (the remote may have taken it) is told apart from one the
remote refused (it did not): only the first keeps the write's mark, so the undo says "may or may not" and the
re-run asks the remote (the real case, Gitea killed mid-push: tests/e2e/testbed/test_gitea_killed_testbed.py)."""

from __future__ import annotations

from gitops_lab.adapters.repo.publish import cut_off


def test_a_connection_broken_mid_push_is_a_cut_off():
    for stderr in (
        "error: RPC failed; curl 56 Recv failure: Connection reset by peer\nfatal: the remote end hung up unexpectedly",
        "error: RPC failed; curl 7 Failed to connect to 127.0.0.1 port 3000 after 0 ms: Couldn't connect to server",
        "send-pack: unexpected disconnect while reading sideband packet",
    ):
        assert cut_off("", stderr), stderr


def test_a_refusal_is_not_a_cut_off_even_when_the_connection_then_ends():
    refused = "To http://gitea/lab.git\n!\tHEAD:refs/heads/main\t[remote rejected] (pre-receive hook declined)\nDone"
    assert not cut_off(refused, "fatal: the remote end hung up unexpectedly")
    assert not cut_off("", "error: failed to push some refs to 'http://gitea/lab.git'")
