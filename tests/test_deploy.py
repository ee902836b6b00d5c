"""deploy/kubernetes: the TFJob manifest against the TFJob model of Kubeflow's own SDK
(kubeflow-training, the Training Operator v1 API), its volumes against the Kubernetes models, and
both against what wgan-tf needs of them: every pod runs the same valid ``wgan-tf train`` command in
the project's train image, in the container the operator gives TF_CONFIG to, with the run directory
on a volume that every pod shares.

The serving manifests likewise: serving.yaml (TF Serving) and serving-python.yaml (the package's
own server, ``wgan-tf serve``), each a Deployment, Service and HorizontalPodAutoscaler, against
the Kubernetes client's models, kserve.yaml against the KServe SDK's InferenceService model, and
all against what serving the exported models needs."""
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

from test_dockerfile import read_dockerfile
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


# -- Serving: serving.yaml (TF Serving), serving-python.yaml (wgan-tf serve) and kserve.yaml ---

def _served_models():
    from wgan_tf.serving import config_files

    return config_files.model_configs(ROOT / "serving" / "models.config")


def _probe_checks_every_model(probe, names):
    """Whether a readiness probe asks every model for an AVAILABLE version. An httpGet of
    /v1/models/NAME is not enough: TF Serving answers it 200 while the version is LOADING."""
    command = " ".join(probe.get("exec", {}).get("command", []))
    return "AVAILABLE" in command and all(re.search(rf"\b{n}\b", command) for n in names)


def _tf_serving_problems(pod, container):
    """serving.yaml's container: tensorflow_model_server's flags and a probe of its REST status."""
    problems = []
    for flag in container.get("args", []):
        config = re.fullmatch(r"--\w+=/etc/wgan-tf/(.+)", flag)
        if config and not (ROOT / "serving" / config[1]).is_file():
            problems.append(f"{flag}: the image has no such file (serving/{config[1]})")
    names = [m.name for m in _served_models()]
    if not _probe_checks_every_model(container.get("readinessProbe", {}), names):
        problems.append(f"the readiness probe must see an AVAILABLE version of each of {names}")
    return problems


def _probe_gets(container, probe, path, port):
    """Whether the container's ``probe`` is an HTTP GET of ``path`` on ``port``, by number or by
    the container port's name."""
    get = container.get(probe, {}).get("httpGet", {})
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
    return get.get("path") == path and ports.get(get.get("port"), get.get("port")) == port


def _python_server_problems(pod, container):
    """serving-python.yaml's container: its args, after the image's ENTRYPOINT (wgan-tf serve),
    accepted by wgan-tf's own parser and by the server's own option checks (with the files the
    image has), the image's config files under the flags the image's CMD gives them, the ports
    the container declares, and probes on the health endpoints of its REST port."""
    from wgan_tf.errors import ConfigError
    from wgan_tf.serving.rest import LIVE_PATH, READY_PATH
    from wgan_tf.serving.server import server_options

    stage = read_dockerfile()[1]["serving-python"]
    entrypoint = stage.exec_form("ENTRYPOINT")
    command = entrypoint[entrypoint.index("wgan-tf") + 1:]  # ["serve"]
    args = container.get("args", [])
    try:
        parsed = build_parser().parse_args(command + args)
    except SystemExit:
        return [f"wgan-tf {' '.join(command)} refuses its arguments {args}"]
    problems = []
    copied = {dest.rstrip("/") + "/" + Path(src).name: src
              for srcs, dest, origin in stage.copies() if origin is None for src in srcs}
    local = copy.copy(parsed)  # the image's files, read from the repository
    for option, name in (("model_config_file", "models.config"),
                         ("batching_parameters_file", "batching.config"),
                         ("monitoring_config_file", "monitoring.config")):
        path = getattr(parsed, option)
        flag = "--" + option.replace("_", "-")
        if copied.get(path) != f"serving/{name}":
            where = [p for p, src in copied.items() if src == f"serving/{name}"]
            problems.append(f"{flag} {path}: want the image's copy of serving/{name} {where}")
        else:
            setattr(local, option, str(ROOT / copied[path]))
    if not problems:
        try:
            server_options(local)
        except ConfigError as e:
            problems.append(f"wgan-tf serve would refuse its arguments: {e}")
    if not parsed.enable_batching:
        problems.append("--enable-batching: the image's CMD batches requests")
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
    if (parsed.port, parsed.rest_port) != (ports.get("grpc"), ports.get("http")):
        problems.append(f"--port {parsed.port} --rest-port {parsed.rest_port}: the container "
                        f"declares grpc {ports.get('grpc')} and http {ports.get('http')}")
    for probe, path, why in (
            ("startupProbe", READY_PATH, "the ports open before the models are loaded"),
            ("readinessProbe", READY_PATH, "every model loaded and warmed up"),
            ("livenessProbe", LIVE_PATH, "the process answers")):
        if not _probe_gets(container, probe, path, parsed.rest_port):
            problems.append(f"the {probe} must GET {path} on the REST port {parsed.rest_port} "
                            f"({why})")
    if parsed.grace >= pod.get("terminationGracePeriodSeconds", 30):
        problems.append(f"--grace {parsed.grace} must be under terminationGracePeriodSeconds: "
                        "the pod is killed then")
    return problems


SERVERS = {  # image -> the checks of its container
    "serving": _tf_serving_problems,
    "serving-python": _python_server_problems,
}


def serving_problems(documents, volumes, image="serving"):
    """Everything wrong with a serving manifest's documents for Kubernetes and for the server
    of the project's ``image`` (serving.yaml: serving, serving-python.yaml: serving-python)."""
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
    if container.get("image") != f"wgan-tf/{image}:{version('wgan-tf')}":
        problems.append(f"image {container.get('image')!r} is not the project's {image} image "
                        f"wgan-tf/{image}:{version('wgan-tf')}")
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
    if ports != {"grpc": 8500, "http": 8501}:
        problems.append(f"container ports {ports}: want grpc 8500 and http 8501")
    problems += SERVERS[image](pod["spec"], container)
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


SERVING_MANIFESTS = {"serving.yaml": "serving", "serving-python.yaml": "serving-python"}


@pytest.mark.parametrize("name", SERVING_MANIFESTS)
def test_serving_manifests_are_valid(volumes, name):
    assert serving_problems(load(name), volumes, SERVING_MANIFESTS[name]) == []


def test_kserve_manifest_is_valid(volumes):
    [isvc] = load("kserve.yaml")
    assert kserve_problems(isvc, volumes) == []


def coexistence_problems(manifests):
    """Where the serving manifests (name -> documents), applied to one namespace, would clash:
    an object of the same kind and name, or a Service that also selects another's pods."""
    problems, owners = [], {}
    for name, documents in manifests.items():
        for doc in documents:
            key = (doc["kind"], doc["metadata"]["name"])
            if key in owners:
                problems.append(f"{name} and {owners[key]} both define {key[0]} {key[1]}")
            owners[key] = name
    for name, documents in manifests.items():
        for service in (d for d in documents if d["kind"] == "Service"):
            selector = service["spec"].get("selector", {})
            for other, other_documents in manifests.items():
                for deployment in (d for d in other_documents if d["kind"] == "Deployment"):
                    labels = deployment["spec"]["template"]["metadata"].get("labels", {})
                    if other != name and selector and not selector.items() - labels.items():
                        problems.append(f"{name}'s Service {service['metadata']['name']} also "
                                        f"selects the pods of {other}")
    return problems


def test_both_serving_manifests_can_run_side_by_side():
    assert coexistence_problems({name: load(name) for name in SERVING_MANIFESTS}) == []


def _relabel(documents, label):
    """serving-python.yaml's documents with serving.yaml's pod label (selectors included)."""
    for doc in documents:
        spec = doc["spec"]
        for labels in (spec.get("selector", {}).get("matchLabels"), spec.get("selector"),
                       spec.get("template", {}).get("metadata", {}).get("labels")):
            if labels and "app.kubernetes.io/name" in labels:
                labels["app.kubernetes.io/name"] = label


@pytest.mark.parametrize("change,problem", [
    (lambda docs: _set(["metadata", "name"], "wgan-serving")(docs[1]),
     "both define Service wgan-serving"),
    (lambda docs: _relabel(docs, "wgan-serving"), "also selects the pods of serving.yaml"),
])
def test_the_coexistence_check_finds_clashes(change, problem):
    manifests = {name: copy.deepcopy(load(name)) for name in SERVING_MANIFESTS}
    change(manifests["serving-python.yaml"])
    found = coexistence_problems(manifests)
    assert any(problem in p for p in found), found


def _in_container(key, value):
    return _set(["spec", "template", "spec", "containers", 0, key], value)


SERVING_BREAKS = {  # (document index, change, problem found), for both serving manifests
    "unknown field": (0, _set(["spec", "replicaz"], 2), "spec.replicaz: unknown field"),
    "replicas a string": (0, _set(["spec", "replicas"], "2"), "replicas: '2' is read as 2"),
    "train image": (0, _in_container("image", "wgan-tf/train:0.1.0"), "not the project's serving"),
    "no gRPC port": (0, _in_container("ports", [{"name": "http", "containerPort": 8501}]),
                     "want grpc 8500 and http 8501"),
    "no liveness": (0, lambda d: d["spec"]["template"]["spec"]["containers"][0].pop(
        "livenessProbe"), "no livenessProbe"),
    "models not on a claim": (0, _set(["spec", "template", "spec", "volumes", 0,
                                       "persistentVolumeClaim", "claimName"], "elsewhere"),
                              "is not on a PersistentVolumeClaim"),
    "models not mounted": (0, _in_container("volumeMounts", []),
                           "is not on a PersistentVolumeClaim"),
    "root": (0, _set(["spec", "template", "spec", "securityContext", "runAsNonRoot"], False),
             "non-root"),
    "no CPU request": (0, _in_container("resources", {}), "no CPU request"),
    "service selector": (1, _set(["spec", "selector"], {"app": "other"}), "Service's selector"),
    "service port": (1, _set(["spec", "ports", 0, "targetPort"], 9000), "want 8500 -> grpc"),
    "autoscaler target": (2, _set(["spec", "scaleTargetRef", "name"], "other"),
                          "not the Deployment"),
    "autoscaler bounds": (2, _set(["spec", "minReplicas"], 20), "minReplicas <= maxReplicas"),
}


def _python_args(edit):
    """A change of serving-python.yaml's Deployment: its container's args become ``edit(args)``."""
    def change(deployment):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        container["args"] = edit(container["args"])
    return change


def _without(flag, values=1):
    """The args without ``flag`` and the ``values`` after it."""
    def edit(args):
        i = args.index(flag)
        return args[:i] + args[i + 1 + values:]
    return _python_args(edit)


def _replaced(old, new):
    return _python_args(lambda args: [new if a == old else a for a in args])


SERVER_BREAKS = {  # manifest -> {name: (document index, change, problem found)}
    "serving.yaml": {
        "status probe": (0, _in_container("readinessProbe", {"httpGet": {
            "path": "/v1/models/wgan", "port": 8501}}), "AVAILABLE version of each"),
        "config not in image": (0, _in_container("args", ["--model_config_file=/etc/wgan-tf/x"]),
                                "the image has no such file"),
    },
    "serving-python.yaml": {
        "TF Serving's image": (0, _in_container("image", "wgan-tf/serving:0.1.0"),
                               "not the project's serving-python image"),
        "TF Serving's flags": (0, _in_container("args", [
            "--model_config_file=/etc/wgan-tf/models.config"]), "refuses its arguments"),
        "not a number": (0, _replaced("8500", "grpc"), "refuses its arguments"),
        "config not in image": (0, _replaced("/etc/wgan-tf/models.config", "/etc/wgan-tf/x"),
                                "want the image's copy of serving/models.config"),
        "configs swapped": (0, _replaced("/etc/wgan-tf/batching.config",
                                         "/etc/wgan-tf/monitoring.config"),
                            "want the image's copy of serving/batching.config"),
        "no model config": (0, _without("--model-config-file"),
                            "want the image's copy of serving/models.config"),
        "a batching file, batching off": (0, _without("--enable-batching", 0),
                                          "would refuse its arguments: --batching-parameters"),
        "batching off": (0, _python_args(lambda args: [
            a for a in args if a not in ("--enable-batching", "--batching-parameters-file",
                                         "/etc/wgan-tf/batching.config")]),
            "the image's CMD batches requests"),
        "metrics, no REST port": (0, _without("--rest-port"),
                                  "would refuse its arguments: --monitoring-config-file"),
        "REST port not the container's": (0, _replaced("8501", "8502"),
                                          "the container declares grpc 8500 and http 8501"),
        "gRPC port not the container's": (0, _replaced("8500", "9000"),
                                          "the container declares grpc 8500 and http 8501"),
        "readiness on the live path": (0, _set(
            ["spec", "template", "spec", "containers", 0, "readinessProbe", "httpGet", "path"],
            "/v2/health/live"), "the readinessProbe must GET /v2/health/ready"),
        "readiness on the gRPC port": (0, _set(
            ["spec", "template", "spec", "containers", 0, "readinessProbe", "httpGet", "port"],
            "grpc"), "the readinessProbe must GET /v2/health/ready"),
        "started once the port opens": (0, _in_container("startupProbe", {
            "tcpSocket": {"port": "http"}}), "the startupProbe must GET /v2/health/ready"),
        "liveness on a port": (0, _in_container("livenessProbe", {
            "tcpSocket": {"port": "grpc"}}), "the livenessProbe must GET /v2/health/live"),
        "grace past the kill": (0, _replaced("20", "30"), "must be under terminationGrace"),
        "kill before the grace": (0, _set(["spec", "template", "spec",
                                           "terminationGracePeriodSeconds"], 10),
                                  "must be under terminationGrace"),
    },
}


@pytest.mark.parametrize("manifest,name", [
    *((m, n) for m in SERVING_MANIFESTS for n in SERVING_BREAKS),
    *((m, n) for m, breaks in SERVER_BREAKS.items() for n in breaks)])
def test_the_serving_checks_find_what_is_wrong(volumes, manifest, name):
    index, change, problem = {**SERVING_BREAKS, **SERVER_BREAKS[manifest]}[name]
    documents = copy.deepcopy(load(manifest))
    change(documents[index])
    found = serving_problems(documents, volumes, SERVING_MANIFESTS[manifest])
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
