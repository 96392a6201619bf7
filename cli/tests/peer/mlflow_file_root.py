"""`serve --default-artifact-root file://ROOT` as MLflow's `--default-artifact-root`, with the real
mlflow client: experiments and runs get file:// locations under ROOT, the client writes and lists
artifacts there itself, the UI's upload-artifact / get-artifact routes (MLflow's checks and
messages) write and read below ROOT, and a run whose location lies elsewhere is never written by
the server.

usage: mlflow_file_root.py TRACKING_URI DB ROOT_FOLDER -> prints "ok"
"""
import os
import sys
import tempfile

import requests

import mlflow
from mlflow import MlflowClient

uri, _, root = sys.argv[1:4]
mlflow.set_tracking_uri(uri)
c = MlflowClient()
exp = c.create_experiment("file-root")
loc = c.get_experiment(exp).artifact_location
assert loc == f"file://{root}/{exp}", (loc, root)
run = c.create_run(exp).info.run_id
art = c.get_run(run).info.artifact_uri
assert art == f"{loc}/{run}/artifacts", art
src = tempfile.mkdtemp()
with open(os.path.join(src, "my.file"), "w") as f:
    f.write("Hello, World!")
c.log_artifact(run, os.path.join(src, "my.file"))
assert open(os.path.join(root, exp, run, "artifacts", "my.file")).read() == "Hello, World!"
assert {a.path for a in c.list_artifacts(run)} == {"my.file"}

up = f"{uri}/ajax-api/2.0/mlflow/upload-artifact"


def refused(r, message):
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (r.status_code, r.text)
    assert message in r.json()["message"], (r.json()["message"], message)


refused(requests.post(up, params={}), "Request must specify run_uuid.")
refused(requests.post(up, params={"run_uuid": run}), "Request must specify path.")
refused(requests.post(up, params={"run_uuid": run, "path": ""}), "Request must specify path.")
refused(requests.post(up, params={"run_uuid": run, "path": "../test.txt"}), "Invalid path")
refused(requests.post(up, params={"run_uuid": run, "path": "test.txt"}), "Request must specify data.")
refused(requests.post(up, params={"run_uuid": run, "path": "test.txt"}, data=b"x" * (10 * 1024 * 1024 + 1)),
        "Artifact size is too large")
assert not os.path.exists(os.path.join(root, exp, run, "artifacts", "test.txt")), "a refused upload left a file"
r = requests.post(up, params={"run_uuid": run, "path": "sub/test.txt"}, data="hello world")
assert r.status_code == 200, r.text
assert open(os.path.join(root, exp, run, "artifacts", "sub", "test.txt")).read() == "hello world"
r = requests.get(f"{uri}/get-artifact", params={"run_uuid": run, "path": "sub/test.txt"})
assert r.status_code == 200 and r.text == "hello world", r.text
refused(requests.get(f"{uri}/get-artifact", params={"run_id": run, "path": "../path"}), "Invalid path")
# an experiment placed elsewhere by a client: its runs' files are the client's, not the server's
elsewhere = tempfile.mkdtemp()
exp2 = c.create_experiment("elsewhere", artifact_location=f"file://{elsewhere}")
run2 = c.create_run(exp2).info.run_id
r = requests.post(up, params={"run_uuid": run2, "path": "x.txt"}, data="no")
assert r.status_code == 400 and "does not serve" in r.json()["message"], r.text
assert not any(files for _, _, files in os.walk(elsewhere)), "the server wrote outside its root"
print("ok")
