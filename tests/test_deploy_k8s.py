"""The Kubernetes manifests in deploy/k8s/, checked offline: each resource against the Kubernetes
JSON schemas that kubernetes-validate bundles (strict: an unknown or misspelt field fails), and
against the image they run (its user, port, writable /tmp and drain) and each other (selectors,
names, ports).

    .venv/bin/pytest tests/test_deploy_k8s.py

No cluster is needed or contacted. docs/scaling.md says how to apply them.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
VERSIONS = ("1.30.0", "1.37.0")  # the oldest minor the manifests promise, and the newest bundled
CMD_GRACEFUL_S = 4  # the image's --timeout-graceful-shutdown
EXIT_AFTER_S = 6  # measured: the process needs 2-6 s more to exit (the Dockerfile says so)


def resources() -> list[tuple[str, dict[str, Any]]]:
    """(file name, resource) for every document of every manifest."""
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def by_kind() -> dict[str, dict[str, Any]]:
    kinds: dict[str, dict[str, Any]] = {}
    for _, resource in resources():
        assert resource["kind"] not in kinds, f"two {resource['kind']} resources"
        kinds[resource["kind"]] = resource
    return kinds


def server_container() -> dict[str, Any]:
    return by_kind()["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def dockerfile_final_stage() -> tuple[dict[str, str], str]:
    """The final stage's ENV and USER (this Dockerfile writes ENV as KEY=VALUE pairs)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    env, user = {}, ""
    for line in lines[last_from + 1 :]:
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "ENV":
            env |= dict(pair.partition("=")[::2] for pair in shlex.split(args))
        elif keyword.upper() == "USER":
            user = args.strip()
    return env, user


def test_the_expected_resources_are_there() -> None:
    kinds = by_kind()
    assert set(kinds) == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Ingress",
    }
    assert kinds["HorizontalPodAutoscaler"]["apiVersion"] == "autoscaling/v2"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("name", "resource"), resources(), ids=lambda v: v if isinstance(v, str) else v["kind"]
)
def test_resource_validates_against_the_kubernetes_schema(
    name: str, resource: dict[str, Any], version: str
) -> None:
    try:
        kubernetes_validate.validate(resource, version, strict=True)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        pytest.fail(
            f"{name}: {resource['kind']} invalid for Kubernetes {version} at {where}: {exc.message}"
        )
    except SchemaNotFoundError:
        pytest.fail(
            f"{name}: no schema for {resource['apiVersion']} {resource['kind']} "
            f"in Kubernetes {version}"
        )


def test_probes_hit_readyz_and_healthz_on_the_image_port() -> None:
    container = server_container()
    env, _ = dockerfile_final_stage()
    assert [p["containerPort"] for p in container["ports"]] == [int(env["UVICORN_PORT"])]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == container["ports"][0]["name"]


def test_pod_runs_read_only_as_the_image_user_with_tmp_writable() -> None:
    pod = by_kind()["Deployment"]["spec"]["template"]["spec"]
    container = server_container()
    env, user = dockerfile_final_stage()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" == user
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    # everything the server writes is under the emptyDir
    for variable in (
        "NUMBA_CACHE_DIR",
        "KERAS_HOME",
    ):
        assert env[variable].startswith("/tmp/"), (
            f"{variable}={env[variable]} is outside the writable /tmp"
        )
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_grace_period_covers_the_prestop_sleep_and_the_servers_drain() -> None:
    pod = by_kind()["Deployment"]["spec"]["template"]["spec"]
    command = server_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    sleep_s = int(command[1])
    assert sleep_s >= 15, "the endpoints and the ingress need seconds to drop a terminating pod"
    assert pod["terminationGracePeriodSeconds"] >= sleep_s + CMD_GRACEFUL_S + EXIT_AFTER_S


def test_service_hpa_pdb_and_ingress_point_at_the_deployment() -> None:
    kinds = by_kind()
    deployment = kinds["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert kinds["Service"]["spec"]["selector"].items() <= labels.items()
    assert kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert kinds["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2, (
        "one pod left would have no peer to drain to"
    )
    port = kinds["Service"]["spec"]["ports"][0]
    assert port["targetPort"] == server_container()["ports"][0]["name"]
    backend = kinds["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert (backend["name"], backend["port"]["name"]) == (
        kinds["Service"]["metadata"]["name"],
        port["name"],
    )


def test_ingress_streams_unbuffered_and_hashes_on_the_client_id() -> None:
    annotations = by_kind()["Ingress"]["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert annotations[prefix + "proxy-buffering"] == "off"
    assert int(annotations[prefix + "proxy-read-timeout"]) >= 60, (
        "longer than the server's 15 s SSE ping"
    )
    assert annotations[prefix + "upstream-hash-by"].startswith("$http_x_client_id")
    assert "http_503" in annotations[prefix + "proxy-next-upstream"].split(), (
        "a draining pod's 503 goes elsewhere"
    )
