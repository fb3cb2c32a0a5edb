"""Storage every Ray node reads: absolute paths, the refusal of node-local ones on a multi-node cluster, and where a
report in an object store is linked from (the cluster runs themselves are in tests/test_cluster.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows import compare_args, shared_storage
from rnnbench.config import from_preset
from tasks import artifacts

REFUSAL = ("is local to this node; use an object store URI (s3://, gs://) or a path every node mounts, and pass "
           "--shared-path to say so")


def test_local_paths_are_made_absolute_in_the_driver_and_uris_are_left_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = shared_storage.absolute(from_preset("smoke", out="results/run", data_root="~/data"))
    assert config.out == str(tmp_path / "results" / "run")
    assert config.data_root == str(Path.home() / "data")
    assert config.dataset_root == config.data_root
    uri = shared_storage.absolute(from_preset("smoke", out="s3://bucket/run"))
    assert uri.out == "s3://bucket/run" and uri.data_root is None and uri.dataset_root == "s3://bucket/run/data"


def test_a_local_out_or_data_root_is_refused_on_a_cluster_of_more_than_one_node():
    local = from_preset("smoke", out="/srv/out")
    with pytest.raises(shared_storage.NodeLocalStorage, match=re.escape(f"--out /srv/out {REFUSAL}")) as refused:
        shared_storage.check_shared(local, nodes=2, joined=True)
    assert "2 nodes" in str(refused.value)
    data = from_preset("smoke", out="s3://bucket/run", data_root="/srv/data")
    with pytest.raises(shared_storage.NodeLocalStorage, match="--data-root /srv/data is local to this node"):
        shared_storage.check_shared(data, nodes=3, joined=True)
    # what every node reads: object stores, or a path the user says every node mounts
    assert shared_storage.check_shared(from_preset("smoke", out="gs://b/run"), nodes=5, joined=True) is None
    shared = from_preset("smoke", out="/mnt/nfs/out", shared_path=True)
    assert shared_storage.check_shared(shared, nodes=5, joined=True) is None
    # one node: the private local Ray says nothing; a joined one-node cluster warns (an autoscaler may add nodes)
    assert shared_storage.check_shared(local, nodes=1, joined=False) is None
    assert "nodes the cluster adds later" in shared_storage.check_shared(local, nodes=1, joined=True)


def test_the_cli_flag_says_a_path_is_shared():
    args = compare_args.build_parser().parse_args(["--preset", "smoke", "--out", "/mnt/nfs/out", "--shared-path"])
    assert compare_args.config_from_args(args).shared_path is True
    args = compare_args.build_parser().parse_args(["--preset", "smoke"])
    assert compare_args.config_from_args(args).shared_path is False


def test_a_report_in_an_object_store_has_an_http_address(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    assert artifacts.http_location("/srv/out/report.html") is None
    assert artifacts.http_location("file:///srv/out/report.html") is None
    assert artifacts.http_location("https://example.org/r/report.html") == "https://example.org/r/report.html"
    assert artifacts.http_location("gs://b/run/report.html") == "https://storage.googleapis.com/b/run/report.html"
    assert artifacts.http_location("s3://b/run/report.html") == "https://b.s3.amazonaws.com/run/report.html"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000/")
    assert artifacts.http_location("s3://b/run/report.html") == "http://127.0.0.1:9000/b/run/report.html"


def test_artifact_keys_outside_a_deployment_are_the_plain_ones():
    assert artifacts.artifact_key("progress") == "rnnbench-progress"


def test_the_cluster_deployment_writes_to_an_object_store_dated_per_run():
    import yaml

    root = Path(__file__).resolve().parent.parent
    deployments = {d["name"]: d for d in yaml.safe_load((root / "deploy" / "prefect.yaml").read_text())["deployments"]}
    weekly = deployments["weekly-full"]
    overrides = weekly["parameters"]["overrides"]
    assert weekly["work_pool"]["job_variables"]["env"]["RAY_ADDRESS"] != "local"  # it runs on a cluster
    assert overrides["out"].startswith(("s3://", "gs://")) and "{date}" in overrides["out"]
    assert overrides["data_root"].startswith(("s3://", "gs://"))
