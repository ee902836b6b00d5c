"""deploy/kubernetes: the TFJob manifest against the TFJob model of Kubeflow's own SDK
(kubeflow-training, the Training Operator v1 API), its volumes against the Kubernetes models, and
both against what wgan-tf needs of them: every pod runs the same valid ``wgan-tf train`` command in
the project's train image, in the container the operator gives TF_CONFIG to, with the run directory
on a volume that every pod shares."""
import copy
import json
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from wgan_tf.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"
# What the Training Operator v1 accepts (kubeflow/training-operator pkg/apis/kubeflow.org/v1:
# TFJobReplicaType and RestartPolicy); the generated SDK models take any string.
REPLICA_TYPES = {"Chief", "Worker", "PS", "Evaluator", "Master"}
RESTART_POLICIES = {"Always", "OnFailure", "Never", "ExitCode"}


class _Response:
    """What ``ApiClient.deserialize`` reads: an HTTP response's JSON text."""

    def __init__(self, obj):
        self.data = json.dumps(obj)


def model_problems(manifest, client, model):
    """Where ``manifest`` is not an instance of the SDK's ``model``: deserialization raises on a
    missing required field or an unconvertible value, and silently drops unknown fields and coerces
    types ("2" to 2, true to 1, "train" to ['t', 'r', ...]); serializing back and comparing shows
    those."""
    try:
        back = client.sanitize_for_serialization(client.deserialize(_Response(manifest), model))
    except (ValueError, TypeError) as e:
        return [f"{model}: {e}"]
    return list(_differences(manifest, back, ""))


def _differences(written, understood, path):
    if isinstance(written, dict) and isinstance(understood, dict):
        for key, value in written.items():
            if key not in understood:
                yield f"{path}.{key}: unknown field"
            else:
                yield from _differences(value, understood[key], f"{path}.{key}")
    elif isinstance(written, list) and isinstance(understood, list) and len(written) == len(
            understood):
        for i, (a, b) in enumerate(zip(written, understood)):
            yield from _differences(a, b, f"{path}[{i}]")
    elif type(written) is not type(understood) or written != understood:
        yield f"{path}: {written!r} is read as {understood!r}"


def tfjob_problems(job, volumes):
    """Everything wrong with the TFJob ``job`` for the Training Operator and for wgan-tf, given
    the ``volumes`` (PersistentVolumeClaims by name) it may mount."""
    from kubeflow.training import ApiClient

    problems = model_problems(job, ApiClient(), "KubeflowOrgV1TFJob")
    if (job.get("apiVersion"), job.get("kind")) != ("kubeflow.org/v1", "TFJob"):
        problems.append("not a kubeflow.org/v1 TFJob")
    replicas = job.get("spec", {}).get("tfReplicaSpecs", {})
    if set(replicas) != {"Chief", "Worker"}:
        problems.append(f"replica types {sorted(replicas)}: want Chief and Worker "
                        f"(the operator knows {sorted(REPLICA_TYPES)})")
    commands = {}
    for kind, spec in replicas.items():
        if spec.get("restartPolicy") not in RESTART_POLICIES:
            problems.append(f"{kind}: restartPolicy {spec.get('restartPolicy')!r} is not one of "
                            f"{sorted(RESTART_POLICIES)}")
        elif spec["restartPolicy"] != "ExitCode":
            problems.append(f"{kind}: restartPolicy ExitCode retries the exits that say "
                            "'restart' (128-255) and fails on bad settings (1-127)")
        if not isinstance(spec.get("replicas"), int) or spec["replicas"] < 1:
            problems.append(f"{kind}: replicas must be a positive number")
        pod = spec.get("template", {}).get("spec", {})
        containers = {c.get("name"): c for c in pod.get("containers", [])}
        container = containers.get("tensorflow")
        if container is None:
            problems.append(f"{kind}: no container named tensorflow (the one given TF_CONFIG)")
            continue
        if container.get("image") != f"wgan-tf/train:{version('wgan-tf')}":
            problems.append(f"{kind}: image {container.get('image')!r} is not the project's "
                            f"train image wgan-tf/train:{version('wgan-tf')}")
        if {"name": "tfjob-port", "containerPort": 2222} not in container.get("ports", []):
            problems.append(f"{kind}: no port 2222 named tfjob-port (TF_CONFIG's port)")
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"{kind}: the pod must run as non-root (the image's user is 10001)")
        args = container.get("args", [])
        commands[kind] = args
        try:
            parsed = build_parser().parse_args(args)
        except SystemExit:
            problems.append(f"{kind}: wgan-tf refuses its arguments {args}")
            continue
        if parsed.command != "train":
            problems.append(f"{kind}: runs wgan-tf {parsed.command}, not train")
            continue
        mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
        pod_volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mount = next((m for path, m in mounts.items() if parsed.out.startswith(path + "/")), None)
        claim = (pod_volumes.get(mount["name"], {}).get("persistentVolumeClaim", {})
                 .get("claimName") if mount else None)
        if claim not in volumes:
            problems.append(f"{kind}: --out {parsed.out} is not on a PersistentVolumeClaim of "
                            "volumes.yaml")
        elif "ReadWriteMany" not in volumes[claim]["spec"].get("accessModes", []):
            problems.append(f"{kind}: the run directory's volume {claim} is not ReadWriteMany, "
                            "so not every worker can share it")
        elif mount.get("readOnly"):
            problems.append(f"{kind}: the run directory's volume is mounted read-only")
    if len({json.dumps(c) for c in commands.values()}) > 1:
        problems.append(f"the replicas run different commands: {commands}")
    return problems


def load(name):
    return list(yaml.safe_load_all((DEPLOY / name).read_text()))


@pytest.fixture(scope="module")
def volumes():
    claims = load("volumes.yaml")
    return {claim["metadata"]["name"]: claim for claim in claims}


def test_volumes_are_persistent_volume_claims(volumes):
    from kubernetes.client import ApiClient

    assert set(volumes) == {"wgan-runs", "wgan-data"}
    for claim in volumes.values():
        assert model_problems(claim, ApiClient(), "V1PersistentVolumeClaim") == []
        assert (claim["apiVersion"], claim["kind"]) == ("v1", "PersistentVolumeClaim")


def test_tfjob_is_a_valid_tfjob_for_wgan_tf(volumes):
    [job] = load("tfjob.yaml")
    assert tfjob_problems(job, volumes) == []


def _set(path, value):
    def change(job):
        node = job
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


WORKER = ["spec", "tfReplicaSpecs", "Worker"]
CONTAINER = WORKER + ["template", "spec", "containers", 0]


@pytest.mark.parametrize("change,problem", [
    (_set(WORKER + ["replicaz"], 2), "Worker.replicaz: unknown field"),
    (_set(WORKER + ["replicas"], "3"), "replicas: '3' is read as 3"),
    (_set(WORKER + ["replicas"], "three"), "invalid literal for int"),
    (_set(WORKER + ["restartPolicy"], "Sometimes"), "restartPolicy 'Sometimes' is not one of"),
    (_set(CONTAINER + ["args"], "train"), "args: 'train' is read as ['t', 'r'"),
    (_set(CONTAINER + ["imagePullPolicyy"], "Always"), "imagePullPolicyy: unknown field"),
    (_set(CONTAINER + ["name"], "trainer"), "no container named tensorflow"),
    (_set(CONTAINER + ["ports"], []), "no port 2222"),
    (_set(CONTAINER + ["image"], "wgan-tf/serving:0.1.0"), "is not the project's train image"),
    (_set(CONTAINER + ["args"], ["train", "--steps", "ten", "--out", "/runs/x"]),
     "wgan-tf refuses its arguments"),
    (_set(CONTAINER + ["args"], ["train", "--out", "/tmp/x"]), "is not on a PersistentVolume"),
    (_set(CONTAINER + ["args"], ["train", "--out", "/runs/other"]), "run different commands"),
    (lambda job: job["spec"]["tfReplicaSpecs"].pop("Chief"), "want Chief and Worker"),
    (lambda job: job["spec"].pop("tfReplicaSpecs"), "tf_replica_specs"),
])
def test_the_checks_find_what_is_wrong(volumes, change, problem):
    """Each check fails where it should: the manifest with one thing broken."""
    [job] = load("tfjob.yaml")
    broken = copy.deepcopy(job)
    change(broken)
    found = tfjob_problems(broken, volumes)
    assert any(problem in p for p in found), found


def test_the_run_directory_must_be_shared(volumes):
    [job] = load("tfjob.yaml")
    single = copy.deepcopy(volumes)
    single["wgan-runs"]["spec"]["accessModes"] = ["ReadWriteOnce"]
    assert any("not ReadWriteMany" in p for p in tfjob_problems(job, single))
