"""deploy/kubernetes: the TFJob manifest against the TFJob model of Kubeflow's own SDK
(kubeflow-training, the Training Operator v1 API), its volumes against the Kubernetes models, and
both against what wgan-tf needs of them: every pod runs the same valid ``wgan-tf train`` command in
the project's train image, in the container the operator gives TF_CONFIG to, with the run directory
on a volume that every pod shares.

The serving manifests likewise: serving.yaml (Deployment, Service, HorizontalPodAutoscaler)
against the Kubernetes client's models, kserve.yaml against the KServe SDK's InferenceService
model, and both against what serving the exported models needs."""
import copy
import importlib.util
import json
import re
import sys
import types
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from wgan_tf.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "kubernetes"
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

    assert set(volumes) == {"wgan-runs", "wgan-data", "wgan-models"}
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
    assert_found("tfjob.yaml", change, tfjob_problems, volumes, problem)


def assert_found(name, change, problems, volumes, problem):
    """``problems`` of the one manifest in ``name``, changed by ``change``, include ``problem``."""
    [manifest] = load(name)
    broken = copy.deepcopy(manifest)
    change(broken)
    found = problems(broken, volumes)
    assert any(problem in p for p in found), found


def test_the_run_directory_must_be_shared(volumes):
    [job] = load("tfjob.yaml")
    single = copy.deepcopy(volumes)
    single["wgan-runs"]["spec"]["accessModes"] = ["ReadWriteOnce"]
    assert any("not ReadWriteMany" in p for p in tfjob_problems(job, single))


# -- Serving: serving.yaml (TF Serving at scale) and kserve.yaml -------------------------------

def _served_models():
    from wgan_tf.serving import config_files

    return config_files.model_configs(ROOT / "serving" / "models.config")


def _probe_checks_every_model(probe, names):
    """Whether a readiness probe asks every model for an AVAILABLE version. An httpGet of
    /v1/models/NAME is not enough: TF Serving answers it 200 while the version is LOADING."""
    command = " ".join(probe.get("exec", {}).get("command", []))
    return "AVAILABLE" in command and all(re.search(rf"\b{n}\b", command) for n in names)


def serving_problems(documents, volumes):
    """Everything wrong with serving.yaml's documents for Kubernetes and for TF Serving."""
    from kubernetes.client import ApiClient

    models = {"Deployment": "V1Deployment", "Service": "V1Service",
              "HorizontalPodAutoscaler": "V2HorizontalPodAutoscaler"}
    by_kind, problems = {}, []
    for doc in documents:
        kind = doc.get("kind")
        if kind not in models:
            problems.append(f"unexpected kind {kind!r}: want {sorted(models)}")
            continue
        by_kind[kind] = doc
        problems += model_problems(doc, ApiClient(), models[kind])
    if set(by_kind) != set(models):
        return problems + [f"kinds {sorted(by_kind)}: want {sorted(models)}"]
    deployment, service, hpa = (by_kind[k] for k in models)
    pod = deployment["spec"]["template"]
    labels = pod.get("metadata", {}).get("labels", {})
    if deployment["spec"].get("selector", {}).get("matchLabels", {}).items() - labels.items():
        problems.append("the Deployment's selector does not match its pod labels")
    containers = pod["spec"].get("containers", [])
    container = containers[0] if containers else {}
    if container.get("image") != f"wgan-tf/serving:{version('wgan-tf')}":
        problems.append(f"image {container.get('image')!r} is not the project's serving image "
                        f"wgan-tf/serving:{version('wgan-tf')}")
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
    if ports != {"grpc": 8500, "http": 8501}:
        problems.append(f"container ports {ports}: want grpc 8500 and http 8501")
    for flag in container.get("args", []):
        config = re.fullmatch(r"--\w+=/etc/wgan-tf/(.+)", flag)
        if config and not (ROOT / "serving" / config[1]).is_file():
            problems.append(f"{flag}: the image has no such file (serving/{config[1]})")
    names = [m.name for m in _served_models()]
    if not _probe_checks_every_model(container.get("readinessProbe", {}), names):
        problems.append(f"the readiness probe must see an AVAILABLE version of each of {names}")
    for probe in ("livenessProbe", "startupProbe"):
        if probe not in container:
            problems.append(f"no {probe}")
    if not pod["spec"].get("securityContext", {}).get("runAsNonRoot"):
        problems.append("the pod must run as non-root (the image's user is 10001)")
    mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
    pod_volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    for model in _served_models():
        mount = next((m for m in mounts.values()
                      if model.base_path.startswith(m["mountPath"].rstrip("/") + "/")), None)
        claim = (pod_volumes.get(mount["name"], {}).get("persistentVolumeClaim", {})
                 .get("claimName") if mount else None)
        if claim not in volumes:
            problems.append(f"model {model.name}'s base path {model.base_path} is not on a "
                            "PersistentVolumeClaim of volumes.yaml")
    if not container.get("resources", {}).get("requests", {}).get("cpu"):
        problems.append("no CPU request: the autoscaler's utilization is relative to it")
    if service["spec"].get("selector", {}).items() - labels.items():
        problems.append("the Service's selector does not match the Deployment's pods")
    service_ports = {p.get("port"): p.get("targetPort") for p in service["spec"].get("ports", [])}
    if {port: ports.get(target, target) for port, target in service_ports.items()} != {
            8500: 8500, 8501: 8501}:
        problems.append(f"Service ports {service_ports}: want 8500 -> grpc, 8501 -> http")
    target = hpa["spec"].get("scaleTargetRef", {})
    if (target.get("kind"), target.get("name")) != ("Deployment",
                                                    deployment["metadata"]["name"]):
        problems.append(f"the autoscaler scales {target}, not the Deployment")
    if not 1 <= hpa["spec"].get("minReplicas", 1) <= hpa["spec"].get("maxReplicas", 0):
        problems.append("the autoscaler needs 1 <= minReplicas <= maxReplicas")
    return problems


def kserve_client():
    """The KServe SDK's ApiClient, over its generated models.

    kserve is installed without its dependencies (Makefile: they would replace the protobuf
    and grpcio that TensorFlow pins), so its package __init__, which starts with the model
    server (fastapi, uvicorn, ...), cannot run: the package is entered without it, and only its
    OpenAPI models and ApiClient are used. Those name the Kubernetes core types they embed
    (V1ObjectMeta, V1ContainerPort, ...) but look them up among KServe's own models, so the
    Kubernetes client's are added there.
    """
    if "kserve" not in sys.modules:
        spec = importlib.util.find_spec("kserve")
        package = types.ModuleType("kserve")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["kserve"] = package
    import kserve.models
    import kubernetes.client.models
    from kserve.api_client import ApiClient

    for name in dir(kubernetes.client.models):
        if name.startswith("V1") and not hasattr(kserve.models, name):
            setattr(kserve.models, name, getattr(kubernetes.client.models, name))
    return ApiClient()


def kserve_problems(isvc, volumes):
    problems = model_problems(isvc, kserve_client(), "V1beta1InferenceService")
    if (isvc.get("apiVersion"), isvc.get("kind")) != ("serving.kserve.io/v1beta1",
                                                      "InferenceService"):
        problems.append("not a serving.kserve.io/v1beta1 InferenceService")
    model = isvc.get("spec", {}).get("predictor", {}).get("model", {})
    if model.get("modelFormat", {}).get("name") != "tensorflow":
        problems.append("modelFormat must be tensorflow (KServe serves it with TF Serving)")
    if model.get("runtimeVersion") != version("tensorflow"):
        problems.append(f"runtimeVersion {model.get('runtimeVersion')!r}: TF Serving must be the "
                        f"exporter's version, {version('tensorflow')}")
    uri = re.fullmatch(r"pvc://([^/]+)/(.+)", str(model.get("storageUri")))
    if not uri or uri[1] not in volumes:
        problems.append(f"storageUri {model.get('storageUri')!r} is not pvc://CLAIM/PATH on a "
                        "PersistentVolumeClaim of volumes.yaml")
    if {"name": "h2c", "containerPort": 9000, "protocol": "TCP"} not in model.get("ports", []):
        problems.append("no port h2c 9000: KServe then routes REST only, not TF Serving's gRPC")
    return problems


def test_serving_manifests_are_valid(volumes):
    assert serving_problems(load("serving.yaml"), volumes) == []
    [isvc] = load("kserve.yaml")
    assert kserve_problems(isvc, volumes) == []


def _in_container(key, value):
    return _set(["spec", "template", "spec", "containers", 0, key], value)


SERVING_BREAKS = {  # (document index, change, problem found)
    "unknown field": (0, _set(["spec", "replicaz"], 2), "spec.replicaz: unknown field"),
    "replicas a string": (0, _set(["spec", "replicas"], "2"), "replicas: '2' is read as 2"),
    "train image": (0, _in_container("image", "wgan-tf/train:0.1.0"), "not the project's serving"),
    "no gRPC port": (0, _in_container("ports", [{"name": "http", "containerPort": 8501}]),
                     "want grpc 8500 and http 8501"),
    "status probe": (0, _in_container("readinessProbe", {"httpGet": {
        "path": "/v1/models/wgan", "port": 8501}}), "AVAILABLE version of each"),
    "no liveness": (0, lambda d: d["spec"]["template"]["spec"]["containers"][0].pop(
        "livenessProbe"), "no livenessProbe"),
    "config not in image": (0, _in_container("args", ["--model_config_file=/etc/wgan-tf/x"]),
                            "the image has no such file"),
    "models not on a claim": (0, _set(["spec", "template", "spec", "volumes", 0,
                                       "persistentVolumeClaim", "claimName"], "elsewhere"),
                              "is not on a PersistentVolumeClaim"),
    "root": (0, _set(["spec", "template", "spec", "securityContext", "runAsNonRoot"], False),
             "non-root"),
    "service selector": (1, _set(["spec", "selector"], {"app": "other"}), "Service's selector"),
    "service port": (1, _set(["spec", "ports", 0, "targetPort"], 9000), "want 8500 -> grpc"),
    "autoscaler target": (2, _set(["spec", "scaleTargetRef", "name"], "other"),
                          "not the Deployment"),
    "autoscaler bounds": (2, _set(["spec", "minReplicas"], 20), "minReplicas <= maxReplicas"),
}


@pytest.mark.parametrize("name", SERVING_BREAKS)
def test_the_serving_checks_find_what_is_wrong(volumes, name):
    index, change, problem = SERVING_BREAKS[name]
    documents = copy.deepcopy(load("serving.yaml"))
    change(documents[index])
    found = serving_problems(documents, volumes)
    assert any(problem in p for p in found), found


MODEL = ["spec", "predictor", "model"]
KSERVE_BREAKS = [
    (_set(MODEL + ["modelFormat", "name"], "pytorch"), "modelFormat must be tensorflow"),
    (_set(MODEL + ["storageUri"], "pvc://nowhere/wgan"), "is not pvc://CLAIM/PATH"),
    (_set(MODEL + ["storageUri"], "/models/wgan"), "is not pvc://CLAIM/PATH"),
    (_set(MODEL + ["ports"], [{"name": "http1", "containerPort": 8080}]), "no port h2c 9000"),
    (_set(MODEL + ["runtimeVersion"], "2.11.0"), "must be the exporter's version"),
    (_set(MODEL + ["storageUrl"], "pvc://wgan-models/wgan"), "storageUrl: unknown field"),
    (_set(["spec", "predictor", "minReplicas"], "one"), "invalid literal for int"),
    (_set(["spec", "predictor", "minReplicas"], "1"), "minReplicas: '1' is read as 1"),
    (_set(MODEL + ["ports", 0, "containerPort"], "9000"), "containerPort: '9000' is read as"),
    (_set(["kind"], "InferenceGraph"), "not a serving.kserve.io/v1beta1 InferenceService"),
]


@pytest.mark.parametrize("change,problem", KSERVE_BREAKS)
def test_the_kserve_checks_find_what_is_wrong(volumes, change, problem):
    assert_found("kserve.yaml", change, kserve_problems, volumes, problem)
