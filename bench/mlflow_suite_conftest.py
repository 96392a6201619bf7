"""pytest plugin and report for bench/mlflow-suite: MLflow's own tests/tracking/test_rest_tracking.py
run against `mlflow server` (the file's own fixtures) or against `fusionprot serve`.

As a plugin (`pytest -p mlflow_suite_conftest`, with FP_SUITE_TARGET=mlflow|fusionprot):
- FP_SUITE_TARGET=fusionprot: the test module's `mlflow_client` and `mlflow_client_with_secrets`
  fixtures are swapped, right after the module is imported and before pytest reads its fixtures,
  for ones that start $FUSIONPROT_BIN serve on a fresh SQLite database and yield an MlflowClient on
  its URL, which is also made the default tracking URI for the test (in MLflow's harness the
  default URI is the SQLite database its server serves, so fluent calls and the CLI reach the
  server's store). The test bodies are untouched (`cli_env` follows `mlflow_client`). Tests that
  use none of these fixtures (they start their own server or call MLflow in process) are skipped
  with a reason starting "fp-n/a", and counted apart.
- FP_SUITE_TARGET=mlflow: nothing is swapped; MLflow's fixture serves its FastAPI app on uvicorn.
- Both: parametrizations of store_type other than FP_SUITE_STORES (default "sqlalchemy") are
  deselected, and each test's outcome (passed, failed, error, skipped, xfailed, xpassed) and the
  one-line reason are written to FP_SUITE_REPORT as JSON.

As a script: `python mlflow_suite_conftest.py summarize MLFLOW.json FUSIONPROT.json TEST_FILE`
prints the counts table and the tests that pass on mlflow but not on fusionprot, split into
(a) outside the tracking API and (b) the tracking API (by the test's name, then its body).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time

TARGET = os.environ.get("FP_SUITE_TARGET", "")
REPORT = os.environ.get("FP_SUITE_REPORT", "")
STORES = set(os.environ.get("FP_SUITE_STORES", "sqlalchemy").split())
NA_PREFIX = "fp-n/a"
SERVER_FIXTURES = ("mlflow_client", "mlflow_client_with_secrets")
USES_SERVER = {*SERVER_FIXTURES, "cli_env"}

# ----------------------------------------------------------------------------------------------
# The plugin.

if TARGET:
    import pytest

    @contextlib.contextmanager
    def _fusionprot_server(tmp_path):
        """Start `fusionprot serve` on a fresh SQLite database and an ephemeral port."""
        binary = os.environ["FUSIONPROT_BIN"]
        home = tmp_path / "fusionprot-serve"
        home.mkdir(exist_ok=True)
        log_path = home / "serve.log"
        with open(log_path, "w") as log:
            # The working directory is pytest's, as it is for MLflow's in-process server
            # (relative artifact locations resolve against it).
            proc = subprocess.Popen(
                # new experiments' artifacts under tmp_path as a file:// root, as the file's own
                # fixture sets MLflow's default_artifact_root
                [binary, "serve", "--db", str(home / "fp.db"), "--addr", "127.0.0.1:0",
                 "--artifacts", str(home / "artifacts"),
                 "--default-artifact-root", tmp_path.as_uri()],
                stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd(),
            )
        try:
            url = None
            deadline = time.time() + 30
            while time.time() < deadline and url is None:
                if proc.poll() is not None:
                    raise RuntimeError(f"fusionprot serve exited: {log_path.read_text()[-2000:]}")
                m = re.search(r"http://127\.0\.0\.1:\d+", log_path.read_text())
                url = m.group(0) if m else None
                if url is None:
                    time.sleep(0.02)
            if url is None:
                raise RuntimeError(f"fusionprot serve did not start: {log_path.read_text()[-2000:]}")
            import requests

            while time.time() < deadline:
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"{url}/health", timeout=1).ok:
                        break
                time.sleep(0.02)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @contextlib.contextmanager
    def _default_tracking_uri(url):
        """Point the client's default tracking URI at our server for the test.

        In MLflow's harness the default URI (tests/conftest.py's tracking_uri_mock) is the very
        SQLite database its server serves, so fluent calls and the CLI reach the server's store;
        with fusionprot the same store is reached only through its URL."""
        import mlflow

        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(url)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(previous)

    def _make_fixtures(has_store_type: bool):
        """The replacement fixtures (built here so that the plugin registers no global fixture).
        Newer files parametrize a `store_type` fixture, older ones `mlflow_client` itself."""
        from mlflow import MlflowClient

        def _env(monkeypatch):
            # What MLflow's own fixture sets up, for the client side of the tests.
            monkeypatch.setenv(
                "MLFLOW_CRYPTO_KEK_PASSPHRASE", "test-passphrase-at-least-32-characters-long"
            )
            monkeypatch.delenv("MLFLOW_TRACE_ARCHIVAL_CONFIG", raising=False)

        if has_store_type:
            @pytest.fixture(name="mlflow_client")
            def fp_mlflow_client(store_type, tmp_path, monkeypatch):
                _env(monkeypatch)
                with _fusionprot_server(tmp_path) as url, _default_tracking_uri(url):
                    yield MlflowClient(url)
        else:
            @pytest.fixture(name="mlflow_client", params=sorted(STORES))
            def fp_mlflow_client(request, tmp_path, monkeypatch):
                _env(monkeypatch)
                with _fusionprot_server(tmp_path) as url, _default_tracking_uri(url):
                    yield MlflowClient(url)

        @pytest.fixture(name="mlflow_client_with_secrets")
        def fp_mlflow_client_with_secrets(tmp_path, monkeypatch):
            _env(monkeypatch)
            with _fusionprot_server(tmp_path) as url, _default_tracking_uri(url):
                yield MlflowClient(url)

        return {"mlflow_client": fp_mlflow_client,
                "mlflow_client_with_secrets": fp_mlflow_client_with_secrets}

    @pytest.hookimpl(wrapper=True)
    def pytest_pycollect_makemodule(module_path, parent):
        module = yield
        if TARGET == "fusionprot" and isinstance(module, pytest.Module):
            original = module._getobj

            def _getobj():
                obj = original()
                if any(hasattr(obj, name) for name in SERVER_FIXTURES):
                    for name, fixture in _make_fixtures(hasattr(obj, "store_type")).items():
                        setattr(obj, name, fixture)
                return obj

            module._getobj = _getobj
        return module

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(session, config, items):
        keep, dropped = [], []
        for item in items:
            params = getattr(getattr(item, "callspec", None), "params", {})
            store = params.get("store_type", params.get("mlflow_client"))
            (dropped if isinstance(store, str) and store not in STORES else keep).append(item)
            if TARGET == "fusionprot" and not USES_SERVER & set(getattr(item, "fixturenames", ())):
                item.add_marker(pytest.mark.skip(
                    reason=f"{NA_PREFIX}: uses none of {sorted(USES_SERVER)}, so no server of ours"))
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep

    _results: dict[str, dict] = {}

    def _reason(report) -> str:
        longrepr = report.longrepr
        if longrepr is None:
            return ""
        if isinstance(longrepr, tuple):  # skips: (path, line, reason)
            return str(longrepr[-1]).removeprefix("Skipped: ")
        crash = getattr(longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(longrepr).strip().splitlines()[-1]
        return " ".join(text.split())[:400]

    def pytest_runtest_logreport(report):
        if report.outcome == "rerun":
            return
        entry = _results.setdefault(report.nodeid, {"outcome": "passed", "reason": ""})
        xfail = hasattr(report, "wasxfail")
        if report.when == "call":
            if xfail:
                entry.update(outcome="xfailed" if report.skipped else "xpassed",
                             reason=report.wasxfail or _reason(report))
            elif report.failed:
                entry.update(outcome="failed", reason=_reason(report))
            elif report.skipped:
                entry.update(outcome="skipped", reason=_reason(report))
        elif report.failed:  # setup or teardown
            if entry["outcome"] not in ("failed", "error"):
                entry.update(outcome="error", reason=f"{report.when}: {_reason(report)}")
        elif report.skipped:  # skipped in setup (marks, pytest.skip in a fixture)
            entry.update(outcome="xfailed" if xfail else "skipped",
                         reason=report.wasxfail if xfail else _reason(report))

    def pytest_sessionfinish(session, exitstatus):
        if REPORT:
            with open(REPORT, "w") as f:
                json.dump({"target": TARGET, "exitstatus": int(exitstatus), "tests": _results},
                          f, indent=1, sort_keys=True)


# ----------------------------------------------------------------------------------------------
# The report.

# Outside the tracking API (experiments, runs, metrics, params, tags, inputs/datasets of runs,
# artifacts): model registry, logged models, traces and spans, gateway and secrets, prompts,
# GraphQL, webhooks, scorers, workspaces, issues, GenAI evaluation datasets, jobs, OTel, ...
_OUTSIDE = [  # (area, pattern for the test's name, pattern for its body)
    ("model registry", r"registered_model|registered-model|model_version|model-version|registry|"
                       r"model_alias", r"registered_model|registered-models|model_version|"
                       r"model-versions|create_registered_model"),
    ("logged models", r"logged_model|logged-model", r"logged_model|logged-models"),
    ("traces", r"trace|span|assessment|otel", r"trace_id|start_trace|start_span|search_traces|"
               r"get_trace|/traces|TraceInfo|mlflow\.trace|\bspans?\b|assessment"),
    ("gateway", r"gateway|secret|endpoint|provider|routing|fallback|passphrase|budget",
                r"gateway|secret"),
    ("prompts", r"prompt", r"prompt"),
    ("GraphQL", r"graphql", r"graphql"),
    ("webhooks", r"webhook", r"webhook"),
    ("scorers", r"scorer|judge|online_scoring", r"scorer|judge"),
    ("workspaces", r"workspace", r"workspace"),
    ("issues", r"issue", r"/issues|_issue\("),
    ("GenAI datasets", r"evaluation_dataset|dataset_record|genai|dataset_experiment",
                       r"create_dataset\(|/mlflow/datasets|genai|add_dataset_to_experiments"),
    ("jobs", r"\bjob|_job", r"/jobs|_job\("),
    ("labeling", r"label", r"labeling|/labels"),
]


def _test_sources(path: str) -> dict[str, str]:
    import ast

    text = open(path).read()
    tree = ast.parse(text)
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            out[node.name] = ast.get_source_segment(text, node) or ""
    return out


_TRACKING = (r"/mlflow/(runs|experiments|metrics|artifacts)|get-artifact|mlflow-artifacts|"
             r"upload-artifact|create_experiment|create_run|log_metric|log_param|set_tag|log_batch|"
             r"log_inputs|search_runs|search_experiments|list_artifacts|log_artifact|get_run")


def _classify(name: str, body: str, reason: str) -> tuple[str, str]:
    """('a', area) outside the tracking API or ('b', '') inside. The test's name decides first,
    then what failed (an endpoint in the reason), then its body: outside only where calls to the
    other APIs are at least as many as calls to the tracking API."""
    for area, by_name, _ in _OUTSIDE:
        if re.search(by_name, name, re.I):
            return "a", area
    for area, _, by_body in _OUTSIDE:
        if re.search(by_body, reason, re.I):
            return "a", area
    code = "\n".join(line for line in body.splitlines()[1:] if not line.strip().startswith("#"))
    tracking = len(re.findall(_TRACKING, code))
    for area, _, by_body in _OUTSIDE:
        if (n := len(re.findall(by_body, code, re.I))) and n >= tracking:
            return "a", area
    return "b", ""


def _in_process(body: str) -> bool:
    """The test patches or reads MLflow's server from inside the pytest process."""
    return bool(re.search(r"mlflow\.server\.|handlers\.|_tracking_store|mock\.patch\(\s*\"mlflow\.store",
                          body))


def summarize(mlflow_json: str, fp_json: str, test_file: str) -> None:
    ml = json.load(open(mlflow_json))["tests"]
    fp = json.load(open(fp_json))["tests"]
    sources = _test_sources(test_file)

    def counts(results, split_na):
        c = {k: 0 for k in ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "n/a")}
        for r in results.values():
            key = r["outcome"]
            if split_na and key == "skipped" and r["reason"].startswith(NA_PREFIX):
                key = "n/a"
            c[key] += 1
        return c

    cm, cf = counts(ml, False), counts(fp, True)
    rows = [("passed", "passed"), ("failed", "failed"), ("errors (setup/teardown)", "error"),
            ("skipped", "skipped"), ("xfailed", "xfailed"), ("xpassed", "xpassed"),
            ("n/a: test starts its own server", "n/a")]
    print(f"{'':34} {'mlflow server':>14} {'fusionprot serve':>17}")
    for label, key in rows:
        if cm[key] or cf[key]:
            print(f"{label:34} {cm[key]:>14} {cf[key]:>17}")
    print(f"{'total':34} {sum(cm.values()):>14} {sum(cf.values()):>17}")

    regress = {"a": [], "b": []}
    for nodeid, r in sorted(ml.items()):
        if r["outcome"] != "passed":
            continue
        f = fp.get(nodeid, {"outcome": "missing", "reason": "not run on fusionprot"})
        if f["outcome"] in ("passed", "xpassed") or f["reason"].startswith(NA_PREFIX):
            continue
        name = nodeid.split("::")[-1]
        func = name.split("[")[0]
        body = sources.get(func, "")
        group, area = _classify(func, body, f["reason"])
        note = " [in-process server internals]" if _in_process(body) else ""
        regress[group].append((name, area, f["outcome"], f["reason"], note))

    both_fail = sum(1 for n, r in ml.items() if r["outcome"] in ("failed", "error")
                    and fp.get(n, {}).get("outcome") in ("failed", "error"))
    fp_only = sum(1 for n, r in fp.items() if r["outcome"] == "passed"
                  and ml.get(n, {}).get("outcome") != "passed")
    print(f"\nfail on both: {both_fail}; pass on fusionprot only: {fp_only}")
    titles = {"a": "(a) outside the tracking API", "b": "(b) the tracking API"}
    for group in ("a", "b"):
        items = regress[group]
        print(f"\npass on mlflow, not on fusionprot, {titles[group]}: {len(items)}")
        for name, area, outcome, reason, note in items:
            where = f"{area}; " if area else ""
            print(f"  {name}  ({where}{outcome}{note}): {reason[:220]}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "summarize":
        summarize(*sys.argv[2:])
    else:
        sys.exit("usage: mlflow_suite_conftest.py summarize MLFLOW.json FUSIONPROT.json TEST_FILE")
