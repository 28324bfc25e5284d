#!/usr/bin/env python3
"""gitops-lab model server: serves one version of the pump-failure model over HTTP.

Standard library only (Python 3.10+), so a stock Python image runs it straight
from a ConfigMap, with no image to build.

Configuration (environment variables):
  MODEL_VERSION  the version to serve, e.g. v2; it names MODEL_DIR/<version>.json
  MODEL_DIR      the folder of model artifacts (default /models)
  PORT           the port to listen on (default 8080; 0 picks a free port)
  BIND_ADDRESS   the address to listen on (default 0.0.0.0)

Endpoints:
  POST /predict  {"instances": [{"temperature_c": 71.2, ...}, ...]}
                 -> {"model_version": ..., "predictions": [...], "probabilities": [...]}
  GET  /healthz  200 while the process is alive
  GET  /readyz   200 once the model has loaded and passed its self-check, else 503
  GET  /version  the served model's version, metrics and evaluation
  GET  /metrics  Prometheus text format

A missing or corrupt model does not stop the server: it stays up and live,
/readyz answers 503 with the reason (also logged to stderr), and /predict and
/version answer 503. In Kubernetes the pod runs but never becomes Ready, so a
rollout of a broken version stalls visibly instead of crash-looping.
"""

from __future__ import annotations

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
    if not (isinstance(instances, list) and instances and isinstance(expected_p, list)
            and isinstance(expected_y, list) and len(instances) == len(expected_p) == len(expected_y)):
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
            raise ModelError(f"'serving.input_units': cannot convert {name!r} from {unit!r} to {model_unit or 'its unit'}")
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


def load_model(model_dir: str, version: str | None) -> dict:
    """Read MODEL_DIR/<version>.json, validate it and run its self-check."""
    if not version:
        raise ModelError("MODEL_VERSION is not set")
    if not VERSION_PATTERN.match(version):
        raise ModelError(f"MODEL_VERSION {version!r} is not of the form v<N>")
    path = os.path.join(model_dir, f"{version}.json")
    try:
        with open(path, encoding="utf-8") as fh:
            artifact = json.load(fh)
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
            family("model_server_requests_total", "counter", "HTTP requests handled, by endpoint, method and status code.")
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
                lines.append(f'model_server_request_duration_seconds_sum{{endpoint="{endpoint}"}} {self._sum[endpoint]:.6f}')
                lines.append(f'model_server_request_duration_seconds_count{{endpoint="{endpoint}"}} {self._count[endpoint]}')

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
                    lines.append(f'model_server_model_metric{{version="{version}",metric="{_label_value(name)}"}} {value}')
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

    @property
    def ready(self) -> bool:
        return self.artifact is not None and not self.draining

    def load(self) -> None:
        try:
            artifact = load_model(self.model_dir, self.requested_version)
        except ModelError as exc:
            self.error = str(exc)
            LOG.error("not ready: %s", exc)
            return
        self.artifact = artifact
        self.converters = input_converters(artifact)
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

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        started = time.perf_counter()
        path = self.path.split("?", 1)[0]
        endpoint = path if path in ENDPOINTS else "other"
        self._status = 500
        try:
            self._route(method, path)
        except BadRequest as exc:
            self._json(exc.status, {"error": str(exc)})
        except Exception:  # never let one request kill the server; say what broke
            LOG.exception("error handling %s %s", method, path)
            self._json(500, {"error": "internal server error"})
        finally:
            self.state.metrics.observe_request(endpoint, method, self._status, time.perf_counter() - started)

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
        self._json(200, {
            "model_version": artifact["version"],
            "loaded": True,
            "description": artifact.get("description"),
            "features": artifact["model"]["features"],
            "metrics": artifact.get("metrics", {}),
            "evaluation": artifact.get("evaluation", {}),
        })

    def _metrics(self) -> None:
        body = self.state.metrics.render(self.state).encode()
        self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")

    def _predict(self) -> None:
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
        converters = self.state.converters
        if converters:
            instances = [{**i, **{n: f(float(i[n])) for n, f in converters.items()}} for i in instances]
        probabilities = [predict_proba(params, instance) for instance in instances]
        predictions = [1 if p >= params["decision_threshold"] else 0 for p in probabilities]
        self.state.metrics.observe_predictions(predictions)
        self._json(200, {
            "model_version": artifact["version"],
            "predictions": predictions,
            "probabilities": probabilities,
        })

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

    def log_error(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        LOG.warning("%s %s", self.address_string(), format % args)


def serve(model_dir: str, version: str | None, host: str, port: int) -> int:
    state = ServerState(model_dir, version)
    handler = type("BoundHandler", (Handler,), {"state": state})
    try:
        httpd = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        LOG.error("cannot listen on %s:%s: %s", host, port, exc)
        return 1
    httpd.daemon_threads = True
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        LOG.info("received %s, shutting down", signal.Signals(signum).name)
        state.draining = True
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    thread = threading.Thread(target=httpd.serve_forever, name="http", daemon=True)
    thread.start()
    bound_host, bound_port = httpd.server_address[:2]
    LOG.info("listening on http://%s:%d (model %s from %s)", bound_host, bound_port, version, model_dir)
    # Load after listening, so /healthz answers at once and /readyz says 503 until ready.
    state.load()
    while not stop.wait(timeout=3600):
        pass
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)
    LOG.info("stopped")
    return 0


def main() -> int:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    port_text = os.environ.get("PORT", "8080")
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        LOG.error("PORT must be a number from 0 to 65535, got %r", port_text)
        return 2
    return serve(
        model_dir=os.environ.get("MODEL_DIR", "/models"),
        version=os.environ.get("MODEL_VERSION") or None,
        host=os.environ.get("BIND_ADDRESS", "0.0.0.0"),
        port=port,
    )


if __name__ == "__main__":
    sys.exit(main())
