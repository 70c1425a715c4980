"""A real Kubernetes control plane on loopback, shaped like the dev cluster docs/deploying.md documents (`kind create
cluster`): the real etcd, kube-apiserver, kube-controller-manager and kube-scheduler, and kwok for the node and the
pod lifecycles (no containers run: kwok marks scheduled pods Running and Ready, and completes Job pods whatever they
would have done).

STAND-INS play the parts of kind's add-ons, following what they do upstream:
- kind's local-path provisioner: a claim the scheduler placed (`volume.kubernetes.io/selected-node`) gets a
  hostPath PersistentVolume on that node, which the real PV controller binds;
- ingress-nginx as kind's guide installs it (`--publish-status-address=localhost`): every Ingress of class nginx
  gets `status.loadBalancer.ingress[0].hostname: localhost`;
- or (`entry="envoy-gateway"`, the laptop stack's) Envoy Gateway with cloud-provider-kind: the Gateway API CRDs and
  GatewayClass `eg` are real; every Gateway of class eg gets the address cloud-provider-kind would give its Envoy
  Service (`status.addresses`), and its controller and Envoy pods' requests are on the node.

    with Cluster(workdir) as cluster:      # ~20 s to a schedulable node
        cluster.kubeconfig                  # context kind-thanos, a system:masters token
        cluster.api("GET", "/api/v1/namespaces")
"""

import base64
import datetime
import ipaddress
import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .build import tool

CONTEXT = "kind-thanos"
NODE = "thanos-control-plane"
NODE_CPU = "4"
NODE_MEMORY = "8Gi"
"""The documented dev node: kind's one node with 4 CPUs and 8 GiB (Docker Desktop's defaults on most laptops)."""
KIND_SYSTEM_PODS = {
    # What kind's own pods and ingress-nginx request on that node (kind v0.30 manifests, ingress-nginx's kind
    # deploy): the room the program has is what is left.
    "etcd": ("100m", "100Mi"), "kube-apiserver": ("250m", None), "kube-controller-manager": ("200m", None),
    "kube-scheduler": ("100m", None), "coredns-1": ("100m", "70Mi"), "coredns-2": ("100m", "70Mi"),
    "kindnet": ("100m", "50Mi"),
}
ENTRY_CONTROLLERS = {
    "ingress-nginx": {"ingress-nginx-controller": ("100m", "90Mi")},
    # Envoy Gateway v1.9: its chart's controller requests, and one Envoy pod per Gateway (the Envoy container's
    # default, api/v1alpha1/shared_types.go, plus its shutdown manager's 10m/32Mi).
    "envoy-gateway": {"envoy-gateway": ("100m", "256Mi"), "envoy-thanos-global": ("110m", "544Mi")},
}
"""The entry point's controller pods on the node, by what serves it."""
GATEWAY_CLASS = "eg"
GATEWAY_ADDRESS = "172.18.0.3"
"""What cloud-provider-kind gives a LoadBalancer Service on kind's Docker network (the Envoy Service's address)."""
TOKEN = "thanos-platform-test-admin"


def _die_with_parent() -> None:
    """In the child: SIGKILL when the test process dies, even killed (its fixtures' teardown never runs then)."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _certificates(folder: Path) -> dict[str, Path]:
    """A CA, the API server's serving certificate for 127.0.0.1, and the service-account signing key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    def pem_key(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    serving = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
               .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                           x509.DNSName("localhost")]), critical=False)
               .sign(ca_key, hashes.SHA256()))
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files = {"ca.crt": ca.public_bytes(serialization.Encoding.PEM), "apiserver.crt": serving.public_bytes(
        serialization.Encoding.PEM), "apiserver.key": pem_key(key), "sa.key": pem_key(sa_key)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in files}


class Cluster:
    """The control plane, the node and the stand-ins; `close` stops every process it started."""

    def __init__(self, workdir: Path, late_ready: tuple[str, float] | None = None, entry: str = "ingress-nginx"):
        """`late_ready`: (a regular expression, seconds): pods whose name matches it become Running and Ready only
        that long after they are scheduled (kwok's pod-ready stage delayed), so a test sees them pending. `entry`:
        what serves the entry point (ENTRY_CONTROLLERS)."""
        self.workdir = workdir
        self.late_ready = late_ready
        self.entry = entry
        self.processes: list[tuple[str, subprocess.Popen, Path]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.port = free_port()
        self.server = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = workdir / "kubeconfig"
        self.last_warnings: list[str] = []
        """The Warning headers of the last API response (Pod Security, deprecations)."""
        self._discovery: dict[tuple[str, str], tuple[str, bool]] = {}
        """(apiVersion, kind) -> (resource, namespaced), from the API server's discovery."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ processes
    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = self.workdir / f"{name}.log"
        popen = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
                                 preexec_fn=_die_with_parent, env=env)
        self.processes.append((name, popen, log))
        return popen

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start a process beside the control plane (a controller under test; its output in `log(name)`): `close`
        stops it first and `leftovers` reports it."""
        return self._spawn(name, args, env)

    def log(self, name: str, tail: int = 3000) -> str:
        return next((log.read_text(errors="replace")[-tail:] for n, _, log in self.processes if n == name), "")

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        for _, popen, _ in reversed(self.processes):
            if popen.poll() is None:
                popen.terminate()
        for _, popen, _ in reversed(self.processes):
            try:
                popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(timeout=5)

    def leftovers(self) -> list[str]:
        """After `close`: every process it started that still runs, and whether the API server still listens."""
        found = [name for name, popen, _ in self.processes if popen.poll() is None]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", self.port)) == 0:
                found.append(f"127.0.0.1:{self.port}")
        return found

    def _start(self) -> None:
        pki = _certificates(self.workdir / "pki")
        etcd_client, etcd_peer = free_port(), free_port()
        self._spawn("etcd", [str(tool("etcd")), "--data-dir", str(self.workdir / "etcd"),
                             "--listen-client-urls", f"http://127.0.0.1:{etcd_client}",
                             "--advertise-client-urls", f"http://127.0.0.1:{etcd_client}",
                             "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                             "--initial-cluster", f"default=http://127.0.0.1:{etcd_peer}",
                             "--unsafe-no-fsync", "--log-level", "warn"])
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{TOKEN},admin,admin,"system:masters"\n')
        self._spawn("kube-apiserver", [
            str(tool("kube-apiserver")), f"--etcd-servers=http://127.0.0.1:{etcd_client}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
            f"--tls-cert-file={pki['apiserver.crt']}", f"--tls-private-key-file={pki['apiserver.key']}",
            f"--client-ca-file={pki['ca.crt']}", f"--token-auth-file={tokens}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki['sa.key']}", f"--service-account-signing-key-file={pki['sa.key']}",
            "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=Node,RBAC",
            # Loopback addresses are not valid endpoints of the kubernetes Service.
            "--endpoint-reconciler-type=none", f"--cert-dir={self.workdir / 'certs'}"])
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT,
            "clusters": [{"name": CONTEXT, "cluster": {
                "server": self.server,
                "certificate-authority-data": base64.b64encode(pki["ca.crt"].read_bytes()).decode()}}],
            "users": [{"name": CONTEXT, "user": {"token": TOKEN}}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}}]}))
        self._ssl = ssl.create_default_context(cafile=str(pki["ca.crt"]))
        self._wait("the API server", lambda: self.api("GET", "/readyz", raw=True) == "ok", 90)
        kubeconfig = f"--kubeconfig={self.kubeconfig}"
        self._spawn("kube-controller-manager", [
            str(tool("kube-controller-manager")), kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1",
            # Port 0: no HTTPS endpoint at all (nothing here reads its health); a port picked in advance could be
            # taken by the time it binds ("bind: address already in use").
            "--secure-port=0", f"--service-account-private-key-file={pki['sa.key']}",
            f"--root-ca-file={pki['ca.crt']}",
            # What needs a cloud, real node networking or a kubelet's volume attachment is left out.
            "--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service,-route,-attachdetach"])
        self._spawn("kube-scheduler", [str(tool("kube-scheduler")), kubeconfig, "--leader-elect=false",
                                       "--bind-address=127.0.0.1", "--secure-port=0"])
        self._spawn("kwok", [str(tool("kwok")), kubeconfig, "--manage-all-nodes=false",
                             "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                             "--node-ip=127.0.0.1", f"--node-port={free_port()}", "--cidr=10.244.0.0/16",
                             f"--server-address=127.0.0.1:{free_port()}", *self._kwok_config()])
        self._node()
        # Pods are admitted only once their namespace's default ServiceAccount exists (the controller-manager
        # creates it a moment after it starts).
        for namespace in ("kube-system", "default"):
            self._wait(f"the {namespace} ServiceAccount", lambda namespace=namespace: self.get(
                f"/api/v1/namespaces/{namespace}/serviceaccounts/default"), 60)
        self._kind_add_ons()
        publish = self._publish_gateway_status if self.entry == "envoy-gateway" else self._publish_ingress_status
        for target in (self._provision_claims, publish):
            thread = threading.Thread(target=self._loop, args=(target,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _kwok_config(self) -> list[str]:
        """kwok's `--config` with its default pod stages, the pod-ready one delayed for `late_ready` pods (none
        without)."""
        if self.late_ready is None:
            return []
        import yaml

        pattern, seconds = self.late_ready
        stages = list(yaml.safe_load_all((Path(__file__).parent / "kwok_pod_stages.yaml").read_text()))
        ready = next(s for s in stages if s["metadata"]["name"] == "pod-ready")
        ready["spec"]["delay"] = {"durationMilliseconds": 0, "durationFrom": {"jq": {
            "expression": f'if (.metadata.name | test({json.dumps(pattern)})) then "{seconds}s" else "0s" end'}}}
        path = self.workdir / "kwok.yaml"
        path.write_text(yaml.safe_dump_all(stages, sort_keys=False))
        return [f"--config={path}"]

    def _wait(self, what: str, check, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, popen, _ in self.processes:
                if popen.poll() is not None:
                    raise RuntimeError(f"{name} exited ({popen.returncode}) waiting for {what}:\n{self.log(name)}")
            try:
                if check():
                    return
            except (OSError, RuntimeError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}:\n"
                           + "\n".join(f"--- {n}\n{self.log(n, 1500)}" for n, _, _ in self.processes))

    # ------------------------------------------------------------------------------------------------ API
    def api(self, method: str, path: str, body: Any = None, *, raw: bool = False,
            content_type: str = "application/json") -> Any:
        """One request with the admin token; the decoded JSON (or text with raw). Raises RuntimeError on >= 400
        with the server's message."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.server + path, data=data, method=method, headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, context=self._ssl, timeout=30) as response:
                text = response.read().decode()
                self.last_warnings = response.headers.get_all("Warning") or []
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: {error.code} {error.read().decode(errors='replace')[:2000]}") from None
        return text if raw else (json.loads(text) if text else None)

    def get(self, path: str) -> Any:
        """The object at path, or None when it does not exist."""
        try:
            return self.api("GET", path)
        except RuntimeError as error:
            if ": 404 " in str(error):
                return None
            raise

    def items(self, path: str) -> list[dict[str, Any]]:
        return self.api("GET", path)["items"]

    # ------------------------------------------------------------------------------------------- the node
    def _node(self) -> None:
        # kind's node: no zone label; kwok keeps it Ready. It is created with the not-ready taint, which kind's node
        # controller (left out here with the node lifecycle controller) removes.
        resources = {"cpu": NODE_CPU, "memory": NODE_MEMORY, "pods": "110", "ephemeral-storage": "100Gi"}
        self.api("POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": NODE, "annotations": {"kwok.x-k8s.io/node": "fake"},
                         "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux",
                                    "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/control-plane": ""}},
            "spec": {}, "status": {"capacity": resources, "allocatable": resources}})
        self._wait("the node to be Ready", lambda: any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (self.get(f"/api/v1/nodes/{NODE}") or {}).get("status", {}).get("conditions", [])), 60)
        # The API server's admission gives a new node the not-ready taint; kind's node controller removes it.
        self.api("PATCH", f"/api/v1/nodes/{NODE}", {"spec": {"taints": None}}, content_type="application/merge-patch+json")

    def _kind_add_ons(self) -> None:
        self.api("POST", "/apis/storage.k8s.io/v1/storageclasses", {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer"})
        self.api("POST", "/apis/networking.k8s.io/v1/ingressclasses", {
            "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"},
            "spec": {"controller": "k8s.io/ingress-nginx"}})
        if self.entry == "envoy-gateway":
            self.install_crds()
            self.api("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": "envoy-gateway-system"}})
            self.api("POST", "/apis/gateway.networking.k8s.io/v1/gatewayclasses", {
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": GATEWAY_CLASS},
                "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"}})
        for name, (cpu, memory) in {**KIND_SYSTEM_PODS, **ENTRY_CONTROLLERS[self.entry]}.items():
            requests = {"cpu": cpu, **({"memory": memory} if memory else {})}
            self.api("POST", "/api/v1/namespaces/kube-system/pods", {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"kind-system": name}},
                "spec": {"nodeName": NODE, "containers": [{"name": name, "image": f"kind/{name}",
                                                            "resources": {"requests": requests}}],
                         "tolerations": [{"operator": "Exists"}]}})

    # --------------------------------------------------------------------------------------- stand-ins
    def _loop(self, step) -> None:
        while not self._stop.is_set():
            try:
                step()
            except (OSError, RuntimeError):
                pass  # the API server is starting or stopping; the next round retries
            self._stop.wait(1)

    def _provision_claims(self) -> None:
        """STAND-IN for kind's local-path provisioner."""
        for claim in self.items("/api/v1/persistentvolumeclaims"):
            meta, spec = claim["metadata"], claim["spec"]
            node = meta.get("annotations", {}).get("volume.kubernetes.io/selected-node")
            if not node or spec.get("volumeName") or claim.get("status", {}).get("phase") == "Bound":
                continue
            name = f"pvc-{meta['uid']}"
            if self.get(f"/api/v1/persistentvolumes/{name}"):
                continue
            self.api("POST", "/api/v1/persistentvolumes", {
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}},
                "spec": {"capacity": {"storage": spec["resources"]["requests"]["storage"]},
                         "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
                         "storageClassName": spec.get("storageClassName") or "standard",
                         "persistentVolumeReclaimPolicy": "Delete",
                         "hostPath": {"path": f"/var/local-path-provisioner/{name}", "type": "DirectoryOrCreate"},
                         "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
                                      "name": meta["name"], "uid": meta["uid"]},
                         "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}})

    def _publish_ingress_status(self) -> None:
        """STAND-IN for ingress-nginx's status publisher (`--publish-status-address=localhost`, kind's deploy)."""
        for ingress in self.items("/apis/networking.k8s.io/v1/ingresses"):
            if ingress["spec"].get("ingressClassName") != "nginx" or ingress.get("status", {}).get("loadBalancer", {}).get("ingress"):
                continue
            meta = ingress["metadata"]
            self.api("PATCH", f"/apis/networking.k8s.io/v1/namespaces/{meta['namespace']}/ingresses/{meta['name']}/status",
                     {"status": {"loadBalancer": {"ingress": [{"hostname": "localhost"}]}}},
                     content_type="application/merge-patch+json")

    def _publish_gateway_status(self) -> None:
        """STAND-IN for Envoy Gateway and cloud-provider-kind: a Gateway of class eg is Accepted and Programmed at the
        address its Envoy Service gets."""
        for gateway in self.items("/apis/gateway.networking.k8s.io/v1/gateways"):
            if gateway["spec"].get("gatewayClassName") != GATEWAY_CLASS or gateway.get("status", {}).get("addresses"):
                continue
            meta = gateway["metadata"]
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            conditions = [{"type": kind, "status": "True", "reason": kind, "message": "stand-in",
                           "lastTransitionTime": now, "observedGeneration": meta.get("generation", 1)}
                          for kind in ("Accepted", "Programmed")]
            self.api("PATCH", f"/apis/gateway.networking.k8s.io/v1/namespaces/{meta['namespace']}/gateways/"
                              f"{meta['name']}/status",
                     {"status": {"addresses": [{"type": "IPAddress", "value": GATEWAY_ADDRESS}],
                                 "conditions": conditions}},
                     content_type="application/merge-patch+json")

    # ------------------------------------------------------------------------------------------- CRDs
    def install_crds(self) -> list[str]:
        """The Gateway API (standard channel) and prometheus-operator CRDs, from their upstream modules; returns
        their names once every one is Established."""
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        # An enum value `=` in a CRD schema: YAML 1.1's value tag, which PyYAML knows no constructor for.
        Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))
        names = []
        for path in sorted(tool("crds").glob("*.yaml")):
            for crd in yaml.load_all(path.read_text(), Loader=Loader):
                if crd and crd.get("kind") == "CustomResourceDefinition":
                    self.api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
                    names.append(crd["metadata"]["name"])

        def established() -> bool:
            for name in names:
                crd = self.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                if not any(c["type"] == "Established" and c["status"] == "True"
                           for c in (crd or {}).get("status", {}).get("conditions", [])):
                    return False
            return True

        self._wait("the CRDs to be Established", established, 60)
        return names

    def resource_path(self, api_version: str, kind: str, namespace: str | None) -> str:
        """The collection path of a kind, from the API server's discovery."""
        if (api_version, kind) not in self._discovery:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            for resource in self.api("GET", base)["resources"]:
                if "/" not in resource["name"]:
                    self._discovery[(api_version, resource["kind"])] = (resource["name"], resource["namespaced"])
        plural, namespaced = self._discovery[(api_version, kind)]
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        return f"{base}/namespaces/{namespace}/{plural}" if namespaced and namespace else f"{base}/{plural}"

    def dry_run(self, manifest: dict[str, Any]) -> tuple[str | None, list[str]]:
        """A server-side dry-run create with strict field validation: (the rejection or None, the warnings)."""
        meta = manifest["metadata"]
        path = self.resource_path(manifest["apiVersion"], manifest["kind"], meta.get("namespace"))
        try:
            self.api("POST", f"{path}?dryRun=All&fieldValidation=Strict", manifest)
        except RuntimeError as error:
            return str(error), []
        return None, list(self.last_warnings)

    # ---------------------------------------------------------------------------------------- queries
    def pending_pods(self) -> list[str]:
        """namespace/name and the scheduler's reason of every pod not Running or Succeeded."""
        found = []
        for pod in self.items("/api/v1/pods"):
            phase = pod.get("status", {}).get("phase")
            if phase not in ("Running", "Succeeded"):
                reasons = [c.get("message", "") for c in pod.get("status", {}).get("conditions", [])
                           if c.get("status") == "False"]
                found.append(f"{pod['metadata']['namespace']}/{pod['metadata']['name']} {phase}: {'; '.join(reasons)}")
        return found



def wait_until(check, timeout: float, interval: float = 1.0):
    """check() until it returns something truthy (returned) or timeout seconds pass (the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)

