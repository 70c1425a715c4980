"""Run the real Pulumi program under the SDK's mock engine and record every resource with inputs and options."""

import gc
import json
import runpy
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import Stack

SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"
REDACTED = "[secret]"
MOCK_ACCOUNT_ID = "123456789012"
MOCK_SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
MOCK_TENANT_ID = "11111111-1111-1111-1111-111111111111"
_NAMESPACE = uuid.UUID("5b1c3f5e-4d0b-4c1f-9a53-7e2f3b6c0a11")


def stable_uuid(*parts: str) -> str:
    """A UUID derived from the given strings: the same plan gets the same ids, byte for byte."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG_VALUE


def plain(value: Any) -> Any:
    """Unwrap secret markers and turn whole floats back into ints (protobuf Structs carry only floats)."""
    if _is_secret(value):
        return plain(value.get("value"))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _hide(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _hide(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide(v) for v in value]
    return REDACTED


def redacted(value: Any) -> Any:
    """Like `plain`, but every secret leaf becomes the string "[secret]" (the shape of a secret map is kept)."""
    if _is_secret(value):
        return _hide(plain(value.get("value")))
    if isinstance(value, dict):
        return {k: redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return plain(value)


def _contains_secret(value: Any) -> bool:
    if _is_secret(value):
        return True
    if isinstance(value, dict):
        return any(_contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secret(v) for v in value)
    return False


@dataclass
class Resource:
    """One registered resource, as the engine would see it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    provider: str | None
    protect: bool
    retain_on_delete: bool
    depends_on: list[str]
    raw_inputs: dict[str, Any]
    outputs: dict[str, Any]
    aliases: list[str] = field(default_factory=list)
    """URNs the resource had before (its `aliases`, as the engine resolves them against the last state)."""

    @cached_property
    def inputs(self) -> dict[str, Any]:
        """Inputs with secrets unwrapped (what policies read); computed once."""
        return plain(self.raw_inputs)

    def to_json(self) -> dict[str, Any]:
        """The preflight contract's resource record (secrets redacted)."""
        return {"urn": self.urn, "type": self.type, "name": self.name, "custom": self.custom,
                "parent": self.parent, "provider": self.provider, "protect": self.protect,
                "retainOnDelete": self.retain_on_delete, "dependsOn": self.depends_on,
                "inputs": redacted(self.raw_inputs), "aliases": self.aliases,
                "secretInputs": sorted(k for k, v in self.raw_inputs.items() if _contains_secret(v))}


@dataclass
class Plan:
    """What a program registered and exported."""

    project: str
    stack: str
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    invokes: list["Invoke"] = field(default_factory=list)


@dataclass(frozen=True)
class Invoke:
    """One data-source call (`get_*`), with the provider the engine would send it to ("" = the default provider)."""

    token: str
    args: dict[str, Any]
    provider: str


_COMPLETED_INPUTS = {"azure-native:storage:ObjectReplicationPolicy": ("rules", "policyId")}
"""Inputs a provider completes with computed parts (unknown as a whole until it has)."""


class PlanMocks(pulumi.runtime.Mocks):
    """Deterministic fake provider outputs: inputs echoed back plus the computed fields the program reads."""

    def __init__(self, stack_outputs: dict[str, dict[str, Any]], first_preview: bool = False):
        self.stack_outputs = stack_outputs
        self.first_preview = first_preview
        """As a first `pulumi preview` sees it: nothing exists yet, so a provider returns only the inputs and every
        computed output (ids, ARNs, keys, passwords, addresses) is unknown."""
        self.invokes: list[Invoke] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        name, typ = args.name, args.typ
        outputs = dict(inputs)
        physical_id = f"{name}-id"
        if self.first_preview and typ != "pulumi:pulumi:StackReference":
            # Only the inputs echo back; every computed output is left out, which the SDK takes as unknown during a
            # preview (as are inputs the provider fills in, like an object replication rule's id).
            return "", {k: v for k, v in inputs.items() if k not in _COMPLETED_INPUTS.get(typ, ())}
        if typ == "pulumi:pulumi:StackReference":
            stack = inputs["name"]
            outputs = {"name": stack, "outputs": self.stack_outputs.get(stack, {}),
                       "secretOutputNames": [k for k in self.stack_outputs.get(stack, {}) if "kubeconfig" in k.lower()]}
        elif typ == "aws:s3/bucket:Bucket":
            physical_id = inputs["bucket"]
            outputs.update(arn=f"arn:aws:s3:::{physical_id}", id=physical_id,
                           bucketRegionalDomainName=f"{physical_id}.s3.amazonaws.com")
        elif typ == "aws:iam/role:Role":
            physical_id = inputs.get("name", name)
            outputs.update(arn=f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/{physical_id}", name=physical_id)
        elif typ == "gcp:serviceaccount/account:Account":
            email = f"{inputs['accountId']}@{inputs.get('project', 'project')}.iam.gserviceaccount.com"
            outputs.update(email=email, name=f"projects/{inputs.get('project', 'project')}/serviceAccounts/{email}",
                           member=f"serviceAccount:{email}")
        elif typ == "gcp:projects/iAMCustomRole:IAMCustomRole":
            outputs["name"] = f"projects/{inputs['project']}/roles/{inputs['roleId']}"
        elif typ == "gcp:storage/bucket:Bucket":
            physical_id = inputs["name"]
            outputs.update(url=f"gs://{physical_id}", selfLink=f"https://www.googleapis.com/storage/v1/b/{physical_id}")
        elif typ.startswith("azure-native:"):
            outputs.update(self._azure(typ, name, inputs))
            physical_id = outputs.get("id", physical_id)
        elif typ in _LOAD_BALANCED:
            outputs.update(_load_balancer_status(typ, name, inputs))
        elif typ.startswith("tls:index/"):
            outputs.update(_tls_outputs(typ, name, plain(inputs)))
        elif typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = "mock-" + stable_uuid("password", name).replace("-", "")[: max(0, int(inputs.get("length", 32)) - 5)]
        return physical_id, outputs

    @staticmethod
    def _azure(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        rg = inputs.get("resourceGroupName", "rg")
        base = f"/subscriptions/{MOCK_SUBSCRIPTION_ID}/resourceGroups/{rg}/providers"
        if typ == "azure-native:storage:StorageAccount":
            account = inputs["accountName"]
            return {"id": f"{base}/Microsoft.Storage/storageAccounts/{account}", "name": account,
                    "primaryEndpoints": {"blob": f"https://{account}.blob.core.windows.net/"}}
        if typ == "azure-native:storage:BlobContainer":
            return {"id": f"{base}/Microsoft.Storage/storageAccounts/{inputs['accountName']}/blobServices/default/"
                          f"containers/{inputs['containerName']}", "name": inputs["containerName"]}
        if typ == "azure-native:managedidentity:UserAssignedIdentity":
            ident = inputs["resourceName"]
            return {"id": f"{base}/Microsoft.ManagedIdentity/userAssignedIdentities/{ident}", "name": ident,
                    "principalId": stable_uuid("principal", name), "clientId": stable_uuid("client", name),
                    "tenantId": MOCK_TENANT_ID}
        if typ == "azure-native:storage:ObjectReplicationPolicy":
            rules = [dict(r, ruleId=r.get("ruleId") or stable_uuid("rule", name, str(i)))
                     for i, r in enumerate(inputs.get("rules", []))]
            policy_id = inputs.get("objectReplicationPolicyId")
            if policy_id in (None, "default"):
                policy_id = stable_uuid("policy", name)
            return {"policyId": policy_id, "rules": rules, "id": f"{base}/objectReplicationPolicies/{policy_id}"}
        if typ == "azure-native:authorization:RoleDefinition":
            return {"id": f"/subscriptions/{MOCK_SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/"
                          f"{inputs.get('roleDefinitionId', stable_uuid('role', name))}"}
        return {"id": f"{base}/{typ.split(':')[-1]}/{name}"}

    # The SDK's MockMonitor takes a plain dict as well as its annotated (dict, failures) pair.
    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        self.invokes.append(Invoke(args.token, plain(dict(args.args)), _urn_of(args.provider) or ""))
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": MOCK_ACCOUNT_ID, "arn": f"arn:aws:iam::{MOCK_ACCOUNT_ID}:user/preflight",
                    "userId": "preflight", "id": MOCK_ACCOUNT_ID}
        if args.token == "azure-native:authorization:getClientConfig":
            return {"subscriptionId": MOCK_SUBSCRIPTION_ID, "tenantId": MOCK_TENANT_ID,
                    "clientId": stable_uuid("client"), "objectId": stable_uuid("object")}
        return {}


_LOAD_BALANCED = ("kubernetes:core/v1:Service", "kubernetes:networking.k8s.io/v1:Ingress",
                  "kubernetes:gateway.networking.k8s.io/v1:Gateway")


def _load_balancer_status(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The address a controller reports for a LoadBalancer Service, an Ingress or a Gateway (a host name as AWS gives,
    and an IP as GCP and Azure give), so the DNS records built from it are real values."""
    if typ.endswith(":Service") and (inputs.get("spec") or {}).get("type") != "LoadBalancer":
        return {}
    digest = uuid.uuid5(_NAMESPACE, name).bytes
    host, ip = f"{name}-{digest.hex()[:8]}.elb.preflight.internal", f"10.{digest[0]}.{digest[1]}.{digest[2] or 1}"
    if typ.endswith(":Gateway"):
        return {"status": {"addresses": [{"type": "Hostname", "value": host}, {"type": "IPAddress", "value": ip}]}}
    return {"status": {"loadBalancer": {"ingress": [{"hostname": host, "ip": ip}]}}}


def _secret(value: Any) -> dict[str, Any]:
    return {SECRET_SIG_KEY: SECRET_SIG_VALUE, "value": value}


def _tls_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    from . import tls_mocks  # cryptography only for stacks with certificates

    if typ == "tls:index/privateKey:PrivateKey":
        key = tls_mocks.private_key(name, inputs)
        return {"privateKeyPem": _secret(key["privateKeyPem"]), "publicKeyPem": key["publicKeyPem"]}
    if typ == "tls:index/selfSignedCert:SelfSignedCert":
        return tls_mocks.self_signed_cert(name, inputs)
    if typ == "tls:index/certRequest:CertRequest":
        return tls_mocks.cert_request(inputs)
    if typ == "tls:index/locallySignedCert:LocallySignedCert":
        return tls_mocks.locally_signed_cert(name, inputs)
    return {}


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, keeping every RegisterResource request with its options."""

    def __init__(self, mocks: PlanMocks):
        super().__init__(mocks)
        self.records: list[tuple[Any, Any]] = []

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The engine's URN: the parent's whole qualified type chain before the type (the SDK's mock keeps only the
        parent's own type), the stack's own type left out."""
        if parent:
            qualified = parent.split("::")[2]
            if qualified != "pulumi:pulumi:Stack":
                type_ = f"{qualified}${type_}"
        return "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), type_, name])

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        self.records.append((request, response))
        return response

    def ReadResource(self, request):  # noqa: N802 (gRPC method name; StackReferences are read, not registered)
        response = super().ReadResource(request)
        self.records.append((request, response))
        return response


def _urn_of(reference: str) -> str | None:
    return reference.rsplit("::", 1)[0] if reference else None


def alias_urns(request: Any, project: str, stack: str) -> list[str]:
    """The URNs a registration's aliases stand for, resolved as the engine does (step_generator.go,
    collapseAliasToUrn): what an alias leaves out is the resource's own name, type, parent, project and stack."""
    urns = []
    for alias in getattr(request, "aliases", []):
        if alias.urn:
            urns.append(alias.urn)
            continue
        spec = alias.spec
        parent = spec.parentUrn or request.parent
        if spec.noParent or not parent or parent.split("::")[2] == "pulumi:pulumi:Stack":
            qualified = spec.type or request.type
        else:
            qualified = f"{parent.split('::')[2]}${spec.type or request.type}"
        urns.append(f"urn:pulumi:{spec.stack or stack}::{spec.project or project}::{qualified}::{spec.name or request.name}")
    return urns


def run_program(program: Path, project: str, stack: str, config: dict[str, Any],
                stack_outputs: dict[str, dict[str, Any]], preview: bool = False, first_preview: bool = False) -> Plan:
    """Run `program` (a Pulumi `__main__.py`) under mocks with the given stack config; return its plan.
    With `preview`, the program runs as in `pulumi preview`; with `first_preview` also every computed output is
    unknown, as in the first preview of a new stack."""
    preview = preview or first_preview
    # The SDK allocates many short-lived objects per resource; with the default thresholds the collector walks the
    # ever-growing plan again and again, which makes large stacks superlinear. Collect rarely instead.
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(200_000, 100, 1000)
    pulumi.runtime.set_all_config({key: value if isinstance(value, str) else json.dumps(value)
                                   for key, value in config.items()})
    mocks = PlanMocks(stack_outputs, first_preview)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor)
    exported: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output:
        runpy.run_path(str(program), run_name="__main__")
        root = pulumi.runtime.get_root_resource()
        outputs = (root.outputs if isinstance(root, Stack) else None) or {}

        async def collect() -> dict[str, Any]:
            result = {}
            for key in sorted(outputs):
                out = pulumi.Output.from_input(outputs[key])
                value = await out.future()
                result[key] = REDACTED if await out.is_secret() else plain(value)
            return result

        collected: pulumi.Output[dict[str, Any]] = pulumi.Output.from_input(collect())
        return collected.apply(exported.update)

    try:
        run()
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    plan = Plan(project=project, stack=stack, outputs=exported,
                invokes=sorted(mocks.invokes, key=lambda i: (i.token, i.provider)))
    for request, response in monitor.records:
        if request.type == "pulumi:pulumi:Stack":
            continue
        read = not hasattr(request, "object")
        plan.resources.append(Resource(
            urn=response.urn, type=request.type, name=request.name, custom=read or request.custom,
            parent=request.parent or None, provider=_urn_of(request.provider),
            protect=not read and bool(request.protect), retain_on_delete=not read and bool(request.retainOnDelete),
            depends_on=sorted(set(request.dependencies)),
            raw_inputs=json_format.MessageToDict(request.properties if read else request.object),
            outputs=plain(json_format.MessageToDict(response.properties if read else response.object)),
            aliases=[] if read else alias_urns(request, project, stack)))
    # Registration order depends on when outputs resolve; the URN order does not.
    plan.resources.sort(key=lambda r: r.urn)
    return plan
