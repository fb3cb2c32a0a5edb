"""deploy/kuberay-*.yaml against KubeRay's API: every field name under a RayCluster's or RayJob's spec is one the
CRD defines, the token reaches the autoscaler (spec.authOptions), and every ServiceAccount and Service the
manifests name is defined in deploy/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
MANIFESTS = ("kuberay-raycluster.yaml", "kuberay-rayjob.yaml")

# The json field names of KubeRay's Go types (the CRDs are generated from them), read off tag v1.7.0 (commit
# 59d663aeec13760646da3db9c1cf8cfe883e30b7):
# https://github.com/ray-project/kuberay/blob/v1.7.0/ray-operator/apis/ray/v1/raycluster_types.go
# https://github.com/ray-project/kuberay/blob/v1.7.0/ray-operator/apis/ray/v1/rayjob_types.go
# Only the structs these manifests use are listed; pod templates are core Kubernetes and not checked here.
KUBERAY_VERSION = "v1.7.0"
FIELDS: dict[str, set[str]] = {
    "RayClusterSpec": {"upgradeStrategy", "authOptions", "suspend", "managedBy", "autoscalerOptions",
                       "headServiceAnnotations", "enableInTreeAutoscaling", "gcsFaultToleranceOptions",
                       "historyServerOptions", "networkPolicy", "tlsOptions", "headGroupSpec", "rayVersion",
                       "workerGroupSpecs"},
    "AuthOptions": {"enableK8sTokenAuth", "secretName", "mode"},
    "AutoscalerOptions": {"resources", "image", "imagePullPolicy", "securityContext", "idleTimeoutSeconds",
                          "upscalingMode", "version", "env", "envFrom", "volumeMounts", "command", "args"},
    "HeadGroupSpec": {"template", "headService", "enableIngress", "ingressOptions", "resources", "labels",
                      "rayStartParams", "serviceType"},
    "WorkerGroupSpec": {"suspend", "groupName", "replicas", "minReplicas", "maxReplicas", "idleTimeoutSeconds",
                        "priority", "resources", "labels", "rayStartParams", "template", "scaleStrategy",
                        "numOfHosts"},
    "RayJobSpec": {"activeDeadlineSeconds", "backoffLimit", "rayClusterSpec", "submitterPodTemplate", "metadata",
                   "clusterSelector", "submitterConfig", "managedBy", "deletionStrategy", "entrypoint",
                   "runtimeEnvYAML", "jobId", "submissionMode", "entrypointResources", "entrypointNumCpus",
                   "entrypointNumGpus", "ttlSecondsAfterFinished", "preRunningDeadlineSeconds",
                   "shutdownAfterJobFinishes", "suspend"},
}
REQUIRED = {"HeadGroupSpec": {"template", "rayStartParams"},
            "WorkerGroupSpec": {"groupName", "minReplicas", "maxReplicas", "rayStartParams", "template"}}
AUTH_MODES = {"disabled", "token"}  # AuthMode's values (raycluster_types.go)
NESTED = {"authOptions": "AuthOptions", "autoscalerOptions": "AutoscalerOptions", "headGroupSpec": "HeadGroupSpec"}


def _documents() -> list[tuple[str, dict]]:
    return [(name, doc) for name in MANIFESTS for doc in yaml.safe_load_all((DEPLOY / name).read_text()) if doc]


def unknown_fields(spec: dict, kind: str, where: str) -> list[str]:
    """Every key under `spec` (a `kind` struct) and its nested KubeRay structs that the CRD does not define, or a
    required one that is missing, as 'path: key'."""
    problems = [f"{where}.{key}: not a field of {kind}" for key in spec if key not in FIELDS[kind]]
    problems += [f"{where}: {kind} lacks {key}" for key in REQUIRED.get(kind, set()) - set(spec)]
    for key, sub in NESTED.items():
        if isinstance(spec.get(key), dict):
            problems += unknown_fields(spec[key], sub, f"{where}.{key}")
    for i, group in enumerate(spec.get("workerGroupSpecs") or []):
        problems += unknown_fields(group, "WorkerGroupSpec", f"{where}.workerGroupSpecs[{i}]")
    if isinstance(spec.get("rayClusterSpec"), dict):
        problems += unknown_fields(spec["rayClusterSpec"], "RayClusterSpec", f"{where}.rayClusterSpec")
    return problems


def _cluster_specs() -> list[tuple[str, dict]]:
    specs = []
    for name, doc in _documents():
        if doc["kind"] == "RayCluster":
            specs.append((name, doc["spec"]))
        elif doc["kind"] == "RayJob":
            specs.append((name, doc["spec"]["rayClusterSpec"]))
    return specs


def test_every_field_is_one_kuberay_defines():
    kinds = {"RayCluster": "RayClusterSpec", "RayJob": "RayJobSpec"}
    checked = [doc["kind"] for _, doc in _documents() if doc["kind"] in kinds]
    assert sorted(checked) == ["RayCluster", "RayJob"]
    for name, doc in _documents():
        if doc["kind"] in kinds:
            assert doc["apiVersion"] == "ray.io/v1", name
            assert unknown_fields(doc["spec"], kinds[doc["kind"]], f"{name}:spec") == []


def test_the_checker_finds_a_misspelt_field():
    spec = {"headGroupSpec": {"template": {}, "rayStartParams": {}, "serviceTyp": "ClusterIP"},
            "authOptions": {"mod": "token"}, "workerGroupSpecs": [{"groupName": "gpu", "template": {}}]}
    problems = unknown_fields(spec, "RayClusterSpec", "spec")
    assert "spec.headGroupSpec.serviceTyp: not a field of HeadGroupSpec" in problems
    assert "spec.authOptions.mod: not a field of AuthOptions" in problems
    assert any("lacks maxReplicas" in p for p in problems)


def test_the_autoscaler_holds_the_token_and_nothing_holds_it_in_the_file():
    for name, spec in _cluster_specs():
        assert spec["enableInTreeAutoscaling"] is True, name
        # authOptions, not env on the Ray containers: KubeRay hands the token to its autoscaler sidecar only then
        assert spec["authOptions"]["mode"] in AUTH_MODES and spec["authOptions"]["mode"] == "token", name
        assert spec["authOptions"]["secretName"] == "rnnbench-ray-token", name
    for name in MANIFESTS:
        text = (DEPLOY / name).read_text()
        for match in re.finditer(r"RAY_AUTH_TOKEN\s*\n\s*value:", text):
            pytest.fail(f"{name}: a literal token at {match.start()}")


def test_the_rayjob_is_one_shot():
    (job,) = [doc for _, doc in _documents() if doc["kind"] == "RayJob"]
    assert job["spec"]["shutdownAfterJobFinishes"] is True
    assert job["spec"]["ttlSecondsAfterFinished"] >= 0 and job["spec"]["activeDeadlineSeconds"] > 0
    assert "flows.compare" in job["spec"]["entrypoint"] and "--out s3://" in job["spec"]["entrypoint"]


def test_what_the_manifests_name_is_defined_in_deploy():
    defined = {(doc["kind"], doc["metadata"]["name"]) for _, doc in _documents() if "name" in doc["metadata"]}
    names_text = "\n".join((DEPLOY / name).read_text() for name in MANIFESTS)
    accounts = set(re.findall(r"serviceAccountName:\s*([a-z0-9-]+)", names_text))
    assert accounts and all(("ServiceAccount", a) in defined for a in accounts), (accounts, defined)
    # in-cluster addresses: SERVICE.NAMESPACE.svc.cluster.local; KubeRay makes the head's (<cluster>-head-svc)
    services = set(re.findall(r"([a-z0-9-]+)\.rnnbench\.svc\.cluster\.local", names_text))
    services |= set(re.findall(r"svc/([a-z0-9-]+)", names_text))
    made_by_kuberay = {f"{n}-head-svc" for kind, n in defined if kind == "RayCluster"}
    assert services and all(("Service", s) in defined or s in made_by_kuberay for s in services), services
    claims = set(re.findall(r"claimName:\s*([a-z0-9-]+)", names_text))
    assert all(("PersistentVolumeClaim", c) in defined for c in claims), claims


def test_the_cluster_starts_a_prefect_worker():
    (cluster,) = [doc for _, doc in _documents() if doc["kind"] == "RayCluster"]
    containers = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
    (worker,) = [c for c in containers if c["name"] == "prefect-worker"]
    assert worker["command"][:3] == ["prefect", "worker", "start"] and "rnnbench-process" in worker["command"]
    launcher = (DEPLOY / "ray-cluster.yaml").read_text()
    assert "prefect worker start --pool rnnbench-process" in launcher
