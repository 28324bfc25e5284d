"""What `status` prints on the testbed, for Argo CD and for Flux, compared whole with golden files
(tests/testdata/golden/; `class status`'s: tests/e2e/testbed/test_classroom_e2e.py; the commands without a
cluster: tests/unit/cli/test_goldens.py).

`pytest tests/e2e/testbed/test_goldens_e2e.py --update-goldens` rewrites them; commit ids, ports and the
test's folder are normalised in tests/helpers/golden.py. Each golden is taken once the lab has
settled (every environment ok), so it holds what a settled lab looks like, not a moment of a sync.
"""

from __future__ import annotations

from helpers.golden import assert_golden, settled


def test_status_of_a_lab_just_up(engine_on_testbed, tmp_path):
    on_testbed = engine_on_testbed
    up = on_testbed.up()
    assert up.exit_code == 0, up.output

    text, as_json = settled(
        lambda: (on_testbed.cli("status"), on_testbed.cli("status", "--output", "json")),
        lambda got: all(result.exit_code == 0 for result in got),
    )
    assert text.exit_code == 0, text.output
    assert as_json.exit_code == 0, as_json.output
    assert_golden(f"status-{on_testbed.engine}.txt", text.stdout, tmp_path)
    assert_golden(f"status-{on_testbed.engine}.json", as_json.stdout, tmp_path)
