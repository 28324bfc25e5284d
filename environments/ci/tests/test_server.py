"""Unit tests of the model code: base/server.py against every artifact in base/models.

Standard library only (`python -m unittest discover -s ci/tests`), like the server.
"""

import importlib.util
import json
import pathlib
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("server", ROOT / "base" / "server.py")
server = importlib.util.module_from_spec(spec)
spec.loader.exec_module(server)
MODELS = sorted((ROOT / "base" / "models").glob("v*.json"))


class ServerTest(unittest.TestCase):
    def test_every_artifact_loads_and_passes_its_self_check(self):
        self.assertTrue(MODELS, "base/models holds no artifact")
        for path in MODELS:
            with self.subTest(artifact=path.name):
                artifact = server.load_model(str(path.parent), path.stem)
                self.assertEqual(artifact["version"], path.stem)

    def test_probabilities_stay_between_zero_and_one_on_extreme_inputs(self):
        for path in MODELS:
            params = json.loads(path.read_text(encoding="utf-8"))["model"]
            for value in (-1e6, 0.0, 1e6):
                p = server.predict_proba(params, {name: value for name in params["features"]})
                self.assertTrue(0.0 <= p <= 1.0, (path.name, value, p))

    def test_bad_requests_are_refused_with_a_reason(self):
        with self.assertRaises(server.BadRequest):
            server.parse_instances(b'{"instances": [{"rpm": 1}]}', ["rpm", "temperature_c"])
        with self.assertRaises(server.BadRequest):
            server.parse_instances(b"not json", ["rpm"])


if __name__ == "__main__":
    unittest.main()
