#!/usr/bin/env python3
"""gitops-lab model server: serves one version of the pump-failure model over HTTP.

Standard library only (Python 3.10+), so a stock Python image runs it straight
from a ConfigMap, with no image to build.

Configuration (environment variables):
  MODEL_VERSION  the version to serve, e.g. v2; it names MODEL_DIR/<version>.json
  MODEL_DIR      the folder of model artifacts (default /models)
  PORT           the port to listen on (default 8080; 0 picks a free port)
  BIND_ADDRESS   the address to listen on (default 0.0.0.0)
  DRAIN_SECONDS  how long to keep serving after SIGTERM (default 3; 0 stops at once)
  VERIFY_SIGNATURE  1: serve a model only if MODEL_DIR/<version>.json.sig, a
                 model-signing bundle, verifies with one of the trusted keys
                 (default 0: no check)
  TRUSTED_KEYS_DIR  the folder of trusted PEM public keys (default /keys)
  PREDICT_KEY_FILE  a file holding the API key /predict requires (default
                 unset: /predict is open). While the file is missing or empty,
                 /predict is open too: the Deployment mounts the Secret
                 model-api-key as optional, so an environment without it serves
                 as before. The file is read on every /predict, so a rotated
                 Secret applies without a restart.

Endpoints:
  POST /predict  {"instances": [{"temperature_c": 71.2, ...}, ...]}
                 -> {"model_version": ..., "predictions": [...], "probabilities": [...]}
                 With an API key set, the request must carry it, as
                 `Authorization: Bearer <key>` (what OpenAI-compatible servers
                 such as vLLM, and TorchServe, take) or `X-API-Key: <key>` (an
                 API gateway's header; the one that passes the Kubernetes API
                 server's proxy, which consumes Authorization itself); else 401
                 with a JSON error. Every other endpoint stays open: probes and
                 scrapes carry no key.
  GET  /healthz  200 while the process is alive
  GET  /readyz   200 once the model has loaded and passed its self-check, else 503
  GET  /version  the served model's version, metrics and evaluation
  GET  /metrics  Prometheus text format, including a histogram of every input
                 feature /predict received (model_server_input_feature): its
                 bins are the octiles of a normal with the training data's mean
                 and standard deviation (the artifact's model.feature_means and
                 feature_stds), so live inputs compare with the training
                 reference (`gitops-lab verify`'s input-drift check). Memory is
                 bounded: counts per bin, never the values.

SIGTERM (or SIGINT) starts a graceful shutdown: /readyz answers 503 at once,
while /predict and every other endpoint keep answering for DRAIN_SECONDS, the
time load balancers and Kubernetes' endpoints take to stop sending traffic.
Then the listener closes, requests still in flight get up to INFLIGHT_GRACE
seconds to finish, and the process exits 0. A second signal ends the drain early.

A missing or corrupt model does not stop the server: it stays up and live,
/readyz answers 503 with the reason (also logged to stderr), and /predict and
/version answer 503. In Kubernetes the pod runs but never becomes Ready, so a
rollout of a broken version stalls visibly instead of crash-looping.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from statistics import NormalDist

LOG = logging.getLogger("model-server")

MAX_BODY_BYTES = 1 << 20
MAX_INSTANCES = 1000
VERSION_PATTERN = re.compile(r"^v[0-9]+$")
ENDPOINTS = ("/predict", "/healthz", "/readyz", "/version", "/metrics")
# Probes and scrapes are frequent; keep them out of the access log.
QUIET_ENDPOINTS = ("/healthz", "/readyz", "/metrics")
# The input contract (an artifact's optional ``serving.input_units``): the unit
# clients send a feature in, converted here into the unit the model was trained
# on, which the feature's name ends with (temperature_c: Celsius).
NAME_UNITS = {"_c": "celsius"}
UNIT_CONVERSIONS = {
    ("celsius", "celsius"): lambda x: x,
    ("fahrenheit", "celsius"): lambda x: (x - 32.0) * 5.0 / 9.0,
    ("kelvin", "celsius"): lambda x: x - 273.15,
}
# After the drain, how long requests already being handled may still take.
INFLIGHT_GRACE = 5.0
DEFAULT_DRAIN_SECONDS = 3.0
# Bins of the input histograms: quantiles of the training distribution, so each
# holds 1/INPUT_BINS of it. Eight keeps a sample of ~150 requests from reading as
# drift by chance (ten bins are noisier at that size) while a shift of one
# standard deviation still shows plainly.
INPUT_BINS = 8
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ModelError(Exception):
    """The selected model cannot be served; the message says why."""


class BadRequest(Exception):
    """The client sent something /predict cannot use."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# --- the model ----------------------------------------------------------------


def predict_proba(params: dict, instance: dict) -> float:
    """P(failure): logistic regression on standardized features.

    The same arithmetic, in the same order, as gitops_lab.model.evaluate.predict_proba.
    """
    z = params["bias"]
    for name, mean, std, weight in zip(
        params["features"], params["feature_means"], params["feature_stds"], params["weights"]
    ):
        z += weight * ((float(instance[name]) - mean) / std)
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    ez = math.exp(z)
    return ez / (1.0 + ez)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_params(params: object) -> None:
    if not isinstance(params, dict):
        raise ModelError("'model' is not an object")
    if params.get("type") != "logistic_regression":
        raise ModelError(f"unsupported model type {params.get('type')!r}")
    features = params.get("features")
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        raise ModelError("'model.features' must be a non-empty list of names")
    for key in ("feature_means", "feature_stds", "weights"):
        values = params.get(key)
        if not isinstance(values, list) or len(values) != len(features) or not all(map(_number, values)):
            raise ModelError(f"'model.{key}' must be {len(features)} finite numbers")
    if any(s <= 0 for s in params["feature_stds"]):
        raise ModelError("'model.feature_stds' must be positive")
    for key in ("bias", "decision_threshold"):
        if not _number(params.get(key)):
            raise ModelError(f"'model.{key}' must be a finite number")


def self_check(artifact: dict) -> None:
    """Predict the artifact's embedded sample rows and compare with its expected outputs."""
    check = artifact.get("self_check")
    if not isinstance(check, dict):
        raise ModelError("the artifact has no 'self_check' section")
    instances = check.get("instances")
    expected_p = check.get("expected_probabilities")
    expected_y = check.get("expected_predictions")
    tolerance = check.get("tolerance", 1e-8)
    if not (
        isinstance(instances, list)
        and instances
        and isinstance(expected_p, list)
        and isinstance(expected_y, list)
        and len(instances) == len(expected_p) == len(expected_y)
    ):
        raise ModelError("'self_check' needs instances, expected_probabilities and expected_predictions of one length")
    params = artifact["model"]
    for index, (instance, want_p, want_y) in enumerate(zip(instances, expected_p, expected_y)):
        try:
            got_p = predict_proba(params, instance)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"self-check row {index} cannot be predicted: {exc!r}") from None
        got_y = 1 if got_p >= params["decision_threshold"] else 0
        if not _number(want_p) or abs(got_p - want_p) > tolerance or got_y != want_y:
            raise ModelError(
                f"self-check row {index}: predicted p={got_p!r} class={got_y}, "
                f"the artifact expects p={want_p!r} class={want_y!r}"
            )


def input_converters(artifact: dict) -> dict:
    """feature -> function, from the artifact's input contract; refuse what it cannot apply.

    ``serving.input_units`` converts from the unit clients send; then
    ``serving.valid_ranges`` ({feature: [low, high]}) treats a reading outside
    the range as a sensor fault and replaces it with the feature's training mean.
    """
    serving = artifact.get("serving") or {}
    units = serving.get("input_units") or {}
    if not isinstance(units, dict):
        raise ModelError("'serving.input_units' must map feature names to units")
    features = artifact["model"]["features"]
    converters = {}
    for name, unit in units.items():
        if name not in features:
            raise ModelError(f"'serving.input_units' names {name!r}, which the model does not use")
        model_unit = next((u for suffix, u in NAME_UNITS.items() if name.endswith(suffix)), None)
        convert = UNIT_CONVERSIONS.get((unit, model_unit))
        if convert is None:
            raise ModelError(
                f"'serving.input_units': cannot convert {name!r} from {unit!r} to {model_unit or 'its unit'}"
            )
        converters[name] = convert
    ranges = serving.get("valid_ranges") or {}
    if not isinstance(ranges, dict):
        raise ModelError("'serving.valid_ranges' must map feature names to [low, high]")
    for name, bounds in ranges.items():
        if name not in features:
            raise ModelError(f"'serving.valid_ranges' names {name!r}, which the model does not use")
        if not (isinstance(bounds, list) and len(bounds) == 2 and all(map(_number, bounds)) and bounds[0] < bounds[1]):
            raise ModelError(f"'serving.valid_ranges.{name}' must be [low, high] with low < high")
        mean = artifact["model"]["feature_means"][features.index(name)]
        converters[name] = _guarded(converters.get(name, float), bounds[0], bounds[1], mean)
    return converters


def _guarded(convert, low: float, high: float, fallback: float):
    def guard(value: float) -> float:
        value = convert(value)
        return value if low <= value <= high else fallback

    return guard


def load_model(model_dir: str, version: str | None, trusted_keys_dir: str | None = None) -> dict:
    """Read MODEL_DIR/<version>.json, validate it and run its self-check.

    With ``trusted_keys_dir``, the artifact's signature must verify first.
    """
    if not version:
        raise ModelError("MODEL_VERSION is not set")
    if not VERSION_PATTERN.match(version):
        raise ModelError(f"MODEL_VERSION {version!r} is not of the form v<N>")
    path = os.path.join(model_dir, f"{version}.json")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        if trusted_keys_dir is not None:
            verify_signature(path, raw, trusted_keys_dir)
        artifact = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        available = sorted(n[:-5] for n in _listdir(model_dir) if n.endswith(".json"))
        raise ModelError(
            f"model {version} not found: no {path} (available: {', '.join(available) or 'none'})"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"model {version} at {path} cannot be read: {exc}") from None
    if not isinstance(artifact, dict):
        raise ModelError(f"{path} does not hold a JSON object")
    if artifact.get("version") != version:
        raise ModelError(f"{path} says it is version {artifact.get('version')!r}, not {version}")
    _check_params(artifact.get("model"))
    input_converters(artifact)
    self_check(artifact)
    return artifact


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def parse_instances(body: bytes, features: list[str]) -> list[dict]:
    """Validate a /predict body; return the instances or raise BadRequest."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or "instances" not in payload:
        raise BadRequest('the body must be a JSON object with an "instances" list')
    instances = payload["instances"]
    if not isinstance(instances, list) or not instances:
        raise BadRequest('"instances" must be a non-empty list')
    if len(instances) > MAX_INSTANCES:
        raise BadRequest(f'"instances" has {len(instances)} items; the limit is {MAX_INSTANCES}', 413)
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise BadRequest(f"instances[{index}] must be an object of feature values")
        for name in features:
            if name not in instance:
                raise BadRequest(f"instances[{index}] is missing {name!r} (needs: {', '.join(features)})")
            if not _number(instance[name]):
                raise BadRequest(f"instances[{index}].{name} must be a finite number, got {instance[name]!r}")
    return instances


# --- signatures ---------------------------------------------------------------
# The artifact's signature is the bundle OpenSSF's model-signing writes with an
# elliptic-curve key (gitops_lab.model.signing): a DSSE envelope, signed with
# ECDSA P-256 / SHA-256, over an in-toto statement recording the file's SHA-256.
# The image has only the standard library, so the ECDSA check is done here with
# integer arithmetic. It is a verifier only: it handles public data, so running
# in non-constant time leaks nothing.

# NIST P-256 (FIPS 186-4, D.1.2.3): y^2 = x^3 - 3x + b over GF(p); G has order n.
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)
# DER of SubjectPublicKeyInfo for an uncompressed P-256 point, up to the point:
# id-ecPublicKey, prime256v1, BIT STRING of 66 bytes (0 unused bits, 0x04).
_P256_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
_DSSE_TYPE = "application/vnd.in-toto+json"
MAX_SIGNATURE_BYTES = 64 * 1024


def _point_add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % _P == 0:
        return None
    if p1 == p2:
        slope = (3 * x1 * x1 - 3) * pow(2 * y1, -1, _P) % _P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, _P) % _P
    x3 = (slope * slope - x1 - x2) % _P
    return x3, (slope * (x1 - x3) - y1) % _P


def _point_mul(k: int, point):
    result = None
    while k:
        if k & 1:
            result = _point_add(result, point)
        point = _point_add(point, point)
        k >>= 1
    return result


def _der_integer(data: bytes, at: int) -> tuple[int, int]:
    if data[at] != 0x02 or data[at + 1] > 33:
        raise ValueError("not a DER INTEGER")
    end = at + 2 + data[at + 1]
    return int.from_bytes(data[at + 2 : end], "big"), end


def ecdsa_p256_verify(point: tuple[int, int], message: bytes, der_signature: bytes) -> bool:
    """ECDSA verification (SEC 1, 4.1.4) of a DER (r, s) signature over SHA-256(message)."""
    try:
        if der_signature[0] != 0x30 or der_signature[1] != len(der_signature) - 2:
            return False
        r, at = _der_integer(der_signature, 2)
        s, at = _der_integer(der_signature, at)
    except (IndexError, ValueError):
        return False
    if at != len(der_signature) or not (0 < r < _N and 0 < s < _N):
        return False
    e = int.from_bytes(hashlib.sha256(message).digest(), "big")
    w = pow(s, -1, _N)
    total = _point_add(_point_mul(e * w % _N, _G), _point_mul(r * w % _N, point))
    return total is not None and total[0] % _N == r


def _pem_public_key(pem: bytes) -> tuple[str, tuple[int, int]]:
    """(key id, point) of a PEM P-256 public key; the key id is model-signing's hint, SHA-256 of the PEM."""
    text = pem.decode("ascii").strip()
    head, foot = "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----"
    if not (text.startswith(head) and text.endswith(foot)):
        raise ValueError("not a PEM public key")
    der = base64.b64decode("".join(text[len(head) : -len(foot)].split()), validate=True)
    if len(der) != len(_P256_SPKI_PREFIX) + 65 or not der.startswith(_P256_SPKI_PREFIX) or der[-65] != 4:
        raise ValueError("not an uncompressed P-256 key")
    x, y = int.from_bytes(der[-64:-32], "big"), int.from_bytes(der[-32:], "big")
    if (y * y - (x * x * x - 3 * x + _B)) % _P:
        raise ValueError("the point is not on P-256")
    b64 = base64.b64encode(der).decode()
    canonical = "\n".join([head, *(b64[i : i + 64] for i in range(0, len(b64), 64)), foot, ""])
    return hashlib.sha256(canonical.encode()).hexdigest(), (x, y)


def trusted_keys(folder: str) -> dict:
    """key id -> (file name, point) for every key file in ``folder`` (a mounted ConfigMap's ..data links skipped)."""
    keys = {}
    for name in sorted(_listdir(folder)):
        if name.startswith("."):
            continue
        try:
            with open(os.path.join(folder, name), "rb") as fh:
                key_id, point = _pem_public_key(fh.read(16 * 1024))
        except (OSError, ValueError) as exc:
            raise ModelError(f"trusted key {os.path.join(folder, name)} cannot be used: {exc}") from None
        keys[key_id] = (name, point)
    if not keys:
        raise ModelError(f"VERIFY_SIGNATURE is on but {folder} holds no trusted public key (TRUSTED_KEYS_DIR)")
    return keys


def verify_signature(path: str, raw: bytes, keys_dir: str) -> str:
    """Check ``raw`` (the bytes at ``path``) against ``path``.sig and the trusted keys; the signing key's file name."""
    keys = trusted_keys(keys_dir)
    sig_path = path + ".sig"
    try:
        with open(sig_path, "rb") as fh:
            bundle = json.loads(fh.read(MAX_SIGNATURE_BYTES + 1)[:MAX_SIGNATURE_BYTES])
    except FileNotFoundError:
        raise ModelError(f"{path} is not signed (no {sig_path}); refusing to serve it (VERIFY_SIGNATURE=1)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"signature {sig_path} is damaged: {exc}") from None
    try:
        hint = bundle["verificationMaterial"]["publicKey"]["hint"]
        envelope = bundle["dsseEnvelope"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signature = base64.b64decode(envelope["signatures"][0]["sig"], validate=True)
        payload_type = envelope["payloadType"]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ModelError(f"signature {sig_path} is damaged (not a model-signing bundle: {exc!r})") from None
    if hint not in keys:
        raise ModelError(f"{path} is signed by key {str(hint)[:16]}, which is not among the trusted keys in {keys_dir}")
    name, point = keys[hint]
    pae = b"DSSEv1 %d %s %d " % (len(payload_type), payload_type.encode(), len(payload)) + payload
    if payload_type != _DSSE_TYPE or not ecdsa_p256_verify(point, pae, signature):
        raise ModelError(f"signature {sig_path} does not verify with trusted key {name}")
    try:
        statement = json.loads(payload)
        resources = statement["predicate"]["resources"]
        digests = {r["digest"] for r in resources if r.get("algorithm") == "sha256"}
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"signature {sig_path} signs no file digest: {exc!r}") from None
    if len(resources) != 1 or hashlib.sha256(raw).hexdigest() not in digests:
        raise ModelError(f"{path} was changed after it was signed: its SHA-256 is not the one {sig_path} signs")
    return name


def api_key_problem(headers, key_file: str | None) -> str | None:
    """Why a /predict request with ``headers`` is not authorized; None when it is.

    No key (``key_file`` unset, missing or empty) authorizes every request.
    """
    if not key_file:
        return None
    try:
        with open(key_file, "rb") as fh:
            expected = fh.read(4096).strip()
    except FileNotFoundError:
        return None
    # Any other OSError propagates: the request gets a 500 and the log says why, never an open door.
    if not expected:
        return None
    given = headers.get("X-API-Key")
    authorization = headers.get("Authorization") or ""
    scheme, _, token = authorization.strip().partition(" ")
    if given is None and scheme.lower() == "bearer":
        given = token.strip()
    if given is None:
        return "an API key is required: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
    if not hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected):
        return "the API key is not valid"
    return None


def verification_keys_dir() -> str | None:
    """TRUSTED_KEYS_DIR when VERIFY_SIGNATURE asks for verification, else None."""
    flag = os.environ.get("VERIFY_SIGNATURE", "0").strip().lower()
    if flag in ("0", "false", "no", ""):
        return None
    if flag not in ("1", "true", "yes"):
        raise ModelError(f"VERIFY_SIGNATURE must be 1 or 0, got {flag!r}")
    return os.environ.get("TRUSTED_KEYS_DIR", "/keys")


# --- metrics ------------------------------------------------------------------


class Metrics:
    """Counters and a latency histogram, rendered in the Prometheus text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = {}
        self._predictions: dict[str, int] = {}
        self._buckets: dict[str, list[int]] = {}
        self._sum: dict[str, float] = {}
        self._count: dict[str, int] = {}
        # feature -> (upper bounds of the bins but the last, counts per bin incl. the last)
        self._inputs: dict[str, tuple[list[float], list[int]]] = {}
        self._input_sums: dict[str, float] = {}

    def track_inputs(self, params: dict) -> None:
        """Start the input histograms, with bins fixed from the model's training statistics."""
        with self._lock:
            for name, mean, std in zip(params["features"], params["feature_means"], params["feature_stds"]):
                reference = NormalDist(mean, std)
                # Rounded as /metrics prints them, so a reader's bins are exactly the ones counted.
                edges = [float(f"{reference.inv_cdf(i / INPUT_BINS):.6g}") for i in range(1, INPUT_BINS)]
                self._inputs[name] = (edges, [0] * INPUT_BINS)
                self._input_sums[name] = 0.0

    def observe_inputs(self, instances: list[dict]) -> None:
        """Count each feature value of the instances as clients sent them."""
        with self._lock:
            for name, (edges, counts) in self._inputs.items():
                for instance in instances:
                    value = float(instance[name])
                    counts[next((i for i, edge in enumerate(edges) if value <= edge), len(edges))] += 1
                    self._input_sums[name] += value

    def observe_request(self, endpoint: str, method: str, code: int, seconds: float) -> None:
        with self._lock:
            key = (endpoint, method, str(code))
            self._requests[key] = self._requests.get(key, 0) + 1
            buckets = self._buckets.setdefault(endpoint, [0] * len(LATENCY_BUCKETS))
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
            self._sum[endpoint] = self._sum.get(endpoint, 0.0) + seconds
            self._count[endpoint] = self._count.get(endpoint, 0) + 1

    def observe_predictions(self, predictions: list[int]) -> None:
        with self._lock:
            for y in predictions:
                self._predictions[str(y)] = self._predictions.get(str(y), 0) + 1

    def render(self, state: "ServerState") -> str:
        lines = []

        def family(name: str, kind: str, help_text: str) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")

        with self._lock:
            family(
                "model_server_requests_total", "counter", "HTTP requests handled, by endpoint, method and status code."
            )
            for (endpoint, method, code), value in sorted(self._requests.items()):
                lines.append(
                    f'model_server_requests_total{{endpoint="{endpoint}",method="{method}",code="{code}"}} {value}'
                )
            family("model_server_predictions_total", "counter", "Instances predicted, by predicted class.")
            for cls in ("0", "1"):
                lines.append(f'model_server_predictions_total{{class="{cls}"}} {self._predictions.get(cls, 0)}')
            family("model_server_request_duration_seconds", "histogram", "Time to handle a request, by endpoint.")
            for endpoint in sorted(self._buckets):
                for bound, value in zip(LATENCY_BUCKETS, self._buckets[endpoint]):
                    lines.append(
                        f'model_server_request_duration_seconds_bucket{{endpoint="{endpoint}",le="{bound}"}} {value}'
                    )
                lines.append(
                    f'model_server_request_duration_seconds_bucket{{endpoint="{endpoint}",le="+Inf"}} {self._count[endpoint]}'
                )
                lines.append(
                    f'model_server_request_duration_seconds_sum{{endpoint="{endpoint}"}} {self._sum[endpoint]:.6f}'
                )
                lines.append(
                    f'model_server_request_duration_seconds_count{{endpoint="{endpoint}"}} {self._count[endpoint]}'
                )
            family(
                "model_server_input_feature",
                "histogram",
                "Feature values /predict received, as sent; bins are the training distribution's octiles.",
            )
            for name in sorted(self._inputs):
                edges, counts = self._inputs[name]
                label = _label_value(name)
                cumulative = 0
                for edge, count in zip(edges, counts):
                    cumulative += count
                    lines.append(f'model_server_input_feature_bucket{{feature="{label}",le="{edge!r}"}} {cumulative}')
                total = sum(counts)
                lines.append(f'model_server_input_feature_bucket{{feature="{label}",le="+Inf"}} {total}')
                lines.append(f'model_server_input_feature_sum{{feature="{label}"}} {self._input_sums[name]!r}')
                lines.append(f'model_server_input_feature_count{{feature="{label}"}} {total}')

        family("model_server_ready", "gauge", "1 when the model has loaded and passed its self-check.")
        lines.append(f"model_server_ready {1 if state.ready else 0}")
        family("model_server_model_info", "gauge", "The model version this server was asked to serve (always 1).")
        artifact = state.artifact
        passed = ""
        if artifact is not None:
            passed = "true" if artifact.get("evaluation", {}).get("passed") else "false"
        version = _label_value(state.requested_version or "")
        lines.append(
            f'model_server_model_info{{version="{version}",loaded="{str(artifact is not None).lower()}",'
            f'evaluation_passed="{passed}"}} 1'
        )
        family("model_server_model_metric", "gauge", "The served model's evaluation metrics, from its artifact.")
        if artifact is not None:
            for name, value in sorted(artifact.get("metrics", {}).items()):
                if _number(value):
                    lines.append(
                        f'model_server_model_metric{{version="{version}",metric="{_label_value(name)}"}} {value}'
                    )
        return "\n".join(lines) + "\n"


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# --- HTTP ---------------------------------------------------------------------


class ServerState:
    def __init__(self, model_dir: str, requested_version: str | None):
        self.model_dir = model_dir
        self.requested_version = requested_version
        self.artifact: dict | None = None
        self.converters: dict = {}
        self.error: str | None = "the model is still loading"
        self.draining = False
        self.metrics = Metrics()
        self._in_flight = 0
        self._idle = threading.Condition()

    def request_started(self) -> None:
        with self._idle:
            self._in_flight += 1

    def request_done(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    @property
    def in_flight(self) -> int:
        with self._idle:
            return self._in_flight

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being handled; False if some still are after ``timeout``."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)

    @property
    def ready(self) -> bool:
        return self.artifact is not None and not self.draining

    def load(self) -> None:
        try:
            artifact = load_model(self.model_dir, self.requested_version, verification_keys_dir())
        except ModelError as exc:
            self.error = str(exc)
            LOG.error("not ready: %s", exc)
            return
        self.artifact = artifact
        self.converters = input_converters(artifact)
        self.metrics.track_inputs(artifact["model"])
        self.error = None
        LOG.info(
            "model %s loaded and self-checked (%s %s)",
            artifact["version"],
            artifact.get("evaluation", {}).get("metric", "accuracy"),
            artifact.get("metrics", {}).get(artifact.get("evaluation", {}).get("metric", "accuracy")),
        )


class Handler(BaseHTTPRequestHandler):
    server_version = "gitops-lab-model-server/1"
    sys_version = ""
    state: ServerState  # set on the subclass made in serve()

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        started = time.perf_counter()
        path = self.path.split("?", 1)[0]
        endpoint = path if path in ENDPOINTS else "other"
        self._status = 500
        self.state.request_started()
        try:
            self._route(method, path)
        except BadRequest as exc:
            self._json(exc.status, {"error": str(exc)})
        except Exception:  # never let one request kill the server; say what broke
            LOG.exception("error handling %s %s", method, path)
            self._json(500, {"error": "internal server error"})
        finally:
            self.state.metrics.observe_request(endpoint, method, self._status, time.perf_counter() - started)
            self.state.request_done()

    def _route(self, method: str, path: str) -> None:
        routes = {
            "/predict": ("POST", self._predict),
            "/healthz": ("GET", self._healthz),
            "/readyz": ("GET", self._readyz),
            "/version": ("GET", self._version),
            "/metrics": ("GET", self._metrics),
        }
        if path not in routes:
            self._json(404, {"error": f"no such endpoint {path!r}", "endpoints": list(ENDPOINTS)})
            return
        allowed, handler = routes[path]
        if method != allowed:
            self._json(405, {"error": f"{path} accepts {allowed} only"}, {"Allow": allowed})
            return
        handler()

    def _healthz(self) -> None:
        self._json(200, {"status": "alive"})

    def _readyz(self) -> None:
        state = self.state
        if state.ready:
            self._json(200, {"status": "ready", "model_version": state.artifact["version"]})
        else:
            reason = "shutting down" if state.draining else state.error
            self._json(503, {"status": "not ready", "model_version": state.requested_version, "reason": reason})

    def _version(self) -> None:
        artifact = self.state.artifact
        if artifact is None:
            self._json(503, {"model_version": self.state.requested_version, "loaded": False, "error": self.state.error})
            return
        self._json(
            200,
            {
                "model_version": artifact["version"],
                "loaded": True,
                "description": artifact.get("description"),
                "features": artifact["model"]["features"],
                "metrics": artifact.get("metrics", {}),
                "evaluation": artifact.get("evaluation", {}),
            },
        )

    def _metrics(self) -> None:
        body = self.state.metrics.render(self.state).encode()
        self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")

    def _predict(self) -> None:
        problem = api_key_problem(self.headers, os.environ.get("PREDICT_KEY_FILE"))
        if problem is not None:
            self._json(401, {"error": problem}, {"WWW-Authenticate": 'Bearer realm="model-server"'})
            return
        artifact = self.state.artifact
        if artifact is None:
            self._json(503, {"error": f"model {self.state.requested_version} is not loaded: {self.state.error}"})
            return
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise BadRequest("a Content-Length header is required", 411)
        try:
            length = int(length_header)
        except ValueError:
            raise BadRequest(f"bad Content-Length {length_header!r}") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise BadRequest(f"the body must be at most {MAX_BODY_BYTES} bytes", 413)
        params = artifact["model"]
        instances = parse_instances(self.rfile.read(length), params["features"])
        # Before the input contract converts or guards anything: drift is about what clients send.
        self.state.metrics.observe_inputs(instances)
        converters = self.state.converters
        if converters:
            instances = [{**i, **{n: f(float(i[n])) for n, f in converters.items()}} for i in instances]
        probabilities = [predict_proba(params, instance) for instance in instances]
        predictions = [1 if p >= params["decision_threshold"] else 0 for p in probabilities]
        self.state.metrics.observe_predictions(predictions)
        self._json(
            200,
            {
                "model_version": artifact["version"],
                "predictions": predictions,
                "probabilities": probabilities,
            },
        )

    def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        body = (json.dumps(payload, sort_keys=True) + "\n").encode()
        self._send(status, body, "application/json", headers)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: object = "-", size: object = "-") -> None:
        if self.path.split("?", 1)[0] not in QUIET_ENDPOINTS:
            LOG.info('%s "%s" %s', self.address_string(), self.requestline, code)

    def log_error(self, format: str, *args: object) -> None:
        LOG.warning("%s %s", self.address_string(), format % args)


def serve(model_dir: str, version: str | None, host: str, port: int, drain_seconds: float = 0.0) -> int:
    state = ServerState(model_dir, version)
    handler = type("BoundHandler", (Handler,), {"state": state})
    try:
        httpd = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        LOG.error("cannot listen on %s:%s: %s", host, port, exc)
        return 1
    httpd.daemon_threads = True
    shutting_down = threading.Event()
    stop_now = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if shutting_down.is_set():
            LOG.info("received %s again, ending the drain", name)
            stop_now.set()
            return
        # Both flags before the log line: whoever reads it may probe /readyz or signal again at once.
        shutting_down.set()
        state.draining = True
        LOG.info(
            "received %s, shutting down: draining for %gs (/readyz answers 503, requests are still served)",
            name,
            drain_seconds,
        )

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # Only the main thread takes SIGTERM and SIGINT: one that lands on a request
    # thread would not wake the main thread's wait below. Threads inherit the mask.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    thread = threading.Thread(target=httpd.serve_forever, name="http", daemon=True)
    thread.start()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
    bound_host, bound_port = httpd.server_address[:2]
    LOG.info("listening on http://%s:%d (model %s from %s)", bound_host, bound_port, version, model_dir)
    if os.environ.get("PREDICT_KEY_FILE"):
        LOG.info("/predict requires the API key in %s whenever that file holds one", os.environ["PREDICT_KEY_FILE"])
    # Load after listening, so /healthz answers at once and /readyz says 503 until ready.
    state.load()
    while not shutting_down.wait(timeout=3600):
        pass
    # Keep serving while whoever routes traffic here notices /readyz failing (or the pod terminating).
    stop_now.wait(timeout=drain_seconds)
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)
    LOG.info("drain over: the listener is closed, %d request(s) in flight", state.in_flight)
    if not state.wait_idle(INFLIGHT_GRACE):
        LOG.warning("%d request(s) still in flight after %gs, stopping anyway", state.in_flight, INFLIGHT_GRACE)
    LOG.info("stopped")
    return 0


def main() -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    port_text = os.environ.get("PORT", "8080")
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        LOG.error("PORT must be a number from 0 to 65535, got %r", port_text)
        return 2
    drain_text = os.environ.get("DRAIN_SECONDS", str(DEFAULT_DRAIN_SECONDS))
    try:
        drain_seconds = float(drain_text)
        if not (math.isfinite(drain_seconds) and drain_seconds >= 0):
            raise ValueError
    except ValueError:
        LOG.error("DRAIN_SECONDS must be a number of seconds, 0 or more, got %r", drain_text)
        return 2
    return serve(
        model_dir=os.environ.get("MODEL_DIR", "/models"),
        version=os.environ.get("MODEL_VERSION") or None,
        host=os.environ.get("BIND_ADDRESS", "0.0.0.0"),
        port=port,
        drain_seconds=drain_seconds,
    )


if __name__ == "__main__":
    sys.exit(main())
