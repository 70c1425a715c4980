"""Identity and secrets: IAM grants exact actions, only the compactor deletes objects or writes block markers, a
Workload Identity member acts as one account, and the objstore config lives only in a Secret, without static keys."""

import json

from pulumi_policy import EnforcementLevel

from ._register import resource_policy, stack_policy
from ._workloads import WORKLOAD_TYPES, Unknown, flag, known, objstore_document, secret_text, thanos_containers


STATIC_KEYS = ("access_key", "secret_key", "service_account", "storage_account_key", "client_secret",
               "storage_connection_string")


def validate_no_wildcards(args, report):
    """Refuses IAM policies that grant wildcard actions: a component could do more than the exact actions it needs."""
    if args.resource_type not in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        return
    document = args.props.get("policy")
    document = json.loads(document) if isinstance(document, str) else document or {}
    for statement in document.get("Statement") or []:
        found = statement.get("Action") or []
        for action in [found] if isinstance(found, str) else found:
            if "*" in action:
                report(f"IAM action {action} is a wildcard: grant the exact actions.")


DELETE_ACTIONS = ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:*", "*")
GCS_DELETE_ROLES = ("roles/storage.objectUser", "roles/storage.objectAdmin", "roles/storage.admin")
GCS_WRITER_PERMISSIONS = {"storage.objects.create", "storage.objects.delete", "storage.objects.get",
                          "storage.objects.list"}
# GCS needs delete permission to overwrite an object: a block writer that cannot delete cannot replace a failed
# upload. So on GCS alone, writers may delete, through a role limited to exactly these object permissions.
GCS_WRITERS = ("prometheus", "ruler", "receive")
AZURE_DELETE_ROLES = ("ba92f5b4-2d11-453d-a403-e96b0029c9fe", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b")
AZURE_BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
MARKER = "-mark.json"
"""How Thanos' block markers end: the compactor deletes a block once its deletion-mark.json is old enough, so
whoever writes markers deletes blocks."""
WRITE_ACTIONS = ("s3:PutObject", "s3:*", "*")


def _actions(statement) -> list[str]:
    found = statement.get("Action") or []
    return [found] if isinstance(found, str) else list(found)


def _denies_markers(document) -> bool:
    """Whether an IAM policy denies writing objects whose key ends in -mark.json."""
    for statement in document.get("Statement") or []:
        resources = statement.get("Resource") or []
        resources = [resources] if isinstance(resources, str) else resources
        if statement.get("Effect") == "Deny" and set(_actions(statement)) & set(WRITE_ACTIONS) and \
                any(str(resource).endswith(MARKER) for resource in resources):
            return True
    return False


def _gcs_custom_roles(resources) -> dict[str, set[str]]:
    """`projects/<project>/roles/<id>` -> permissions of every custom role in the stack."""
    return {f"projects/{r.props.get('project')}/roles/{r.props.get('roleId')}": set(r.props.get("permissions") or [])
            for r in resources if r.resource_type == "gcp:projects/iAMCustomRole:IAMCustomRole"}


def validate_only_compactor_deletes(args, report):
    """Refuses any identity but the compactor's that may delete objects or write block markers: it could destroy blocks."""
    custom = _gcs_custom_roles(args.resources)
    roles = {}
    for r in args.resources:
        if r.resource_type == "aws:iam/role:Role":
            component = (r.props.get("tags") or {}).get("thanos.io/component")
            for key in (r.props.get("name"), known(lambda r=r: r.props.get("id"))):
                if key and not isinstance(key, Unknown):  # a new role's id is computed at apply; its name is known
                    roles[key] = component
    for r in args.resources:
        if r.resource_type == "aws:iam/rolePolicy:RolePolicy":
            component = roles.get(r.props.get("role"))
            document = r.props.get("policy")
            document = json.loads(document) if isinstance(document, str) else document or {}
            granted = [a for s in document.get("Statement") or [] if s.get("Effect") == "Allow" for a in _actions(s)]
            if component and component != "compactor" and any(a in DELETE_ACTIONS for a in granted):
                report(f"the {component} role may delete objects: only the compactor deletes.", r.urn)
            if component and component != "compactor" and set(granted) & set(WRITE_ACTIONS) \
                    and not _denies_markers(document):
                report(f"the {component} role may write block markers: a deletion-mark.json it writes makes the "
                       f"compactor delete the block (and the delete replicates to the DR copy); deny s3:PutObject on "
                       f"<bucket>/*{MARKER}.", r.urn)
        elif r.resource_type == "gcp:storage/bucketIAMMember:BucketIAMMember":
            member, role = str(r.props.get("member") or ""), str(r.props.get("role") or "")
            deletes = role in GCS_DELETE_ROLES or "storage.objects.delete" in custom.get(role, set())
            writer_role = role in custom and custom[role] <= GCS_WRITER_PERMISSIONS
            creates = "storage.objects.create" in custom.get(role, set()) or role in (
                "roles/storage.objectCreator", *GCS_DELETE_ROLES)
            condition = str((r.props.get("condition") or {}).get("expression") or "")
            if creates and "compactor" not in member and MARKER not in condition:
                report(f"{member} may create block markers: a deletion-mark.json it writes makes the compactor delete "
                       f"the block; add the condition !resource.name.endsWith(\"{MARKER}\") to the binding.", r.urn)
            if not deletes or "compactor" in member:
                continue
            if any(w in member for w in GCS_WRITERS) and writer_role:
                continue
            report(f"{member} gets {role}, which deletes objects: only the compactor deletes (on GCS, block writers "
                   "too, through a role of exactly object get, list, create and delete).", r.urn)
        elif r.resource_type == "azure-native:authorization:RoleAssignment":
            role = str(r.props.get("roleDefinitionId") or "")
            if role.rsplit("/", 1)[-1] in AZURE_DELETE_ROLES and "compactor" not in r.name:
                report(f"{r.name} gets a blob role that deletes: only the compactor deletes.", r.urn)
            writes = any(w in r.name for w in GCS_WRITERS) and role.rsplit("/", 1)[-1] != AZURE_BLOB_READER
            if writes and MARKER not in str(r.props.get("condition") or ""):
                report(f"{r.name} may write block markers: a deletion-mark.json it writes makes the compactor delete "
                       f"the block; add a condition refusing writes to blobs:path '*{MARKER}'.", r.urn)


def validate_objstore_secrecy(args, report):
    """Refuses an objstore config in a ConfigMap or an inline flag, and static cloud keys in one: bucket credentials would leak."""
    if args.resource_type == "kubernetes:core/v1:ConfigMap":
        for key in sorted(args.props.get("data") or {}):
            if objstore_document(secret_text(args.props, key, config_map=True)):
                report(f"ConfigMap key {key} holds an objstore config: keep it in a Secret.")
    if args.resource_type == "kubernetes:core/v1:Secret":
        keys = {*(args.props.get("stringData") or {}), *(args.props.get("data") or {})}
        for key in sorted(keys):
            document = objstore_document(secret_text(args.props, key))
            if document and document.get("type") in ("S3", "GCS", "AZURE"):
                config = document.get("config") or {}
                cloud = document["type"] != "S3" or "amazonaws.com" in str(config.get("endpoint", ""))
                if cloud and any(config.get(k) for k in STATIC_KEYS):
                    report(f"Secret key {key} holds static cloud credentials: use workload identity.")
    if args.resource_type in WORKLOAD_TYPES:
        for _, _, flags in thanos_containers(args.props):
            # $(VAR) from a Secret key (kube-thanos, prometheus-operator) is no inline config.
            if any(not value.startswith("$(") for value in flag(flags, "objstore.config")):
                report("the objstore config is passed inline as a flag: mount it from a Secret (--objstore.config-file).")


def validate_workload_identity_scope(args, report):
    """GKE Workload Identity pools are per project: `serviceAccount:<pool>[ns/ksa]` is that ServiceAccount in every
    cluster of the project. Two Google service accounts bound to one such member: each cluster can act as both."""
    bound: dict[str, set] = {}
    for r in args.resources:
        if r.resource_type == "gcp:serviceaccount/iAMMember:IAMMember" and \
                r.props.get("role") == "roles/iam.workloadIdentityUser":
            member, account = r.props.get("member"), r.props.get("serviceAccountId")
            if isinstance(member, str) and isinstance(account, str):
                bound.setdefault(member, set()).add(account)
    for r in args.resources:
        if r.resource_type != "gcp:serviceaccount/iAMMember:IAMMember":
            continue
        accounts = bound.get(r.props.get("member")) or set()
        if len(accounts) > 1:
            report(f"{r.props.get('member')} may act as {len(accounts)} Google service accounts: a Workload "
                   "Identity pool spans its project, so that namespace and ServiceAccount in any of its clusters gets "
                   "every one of them. Give the clusters their own projects (workload-identity-pool) or namespaces.",
                   r.urn)


POLICIES = [
    resource_policy("thanos-identity-no-wildcards", "IAM policies grant exact actions, never wildcards.",
                    validate_no_wildcards),
    stack_policy("thanos-identity-only-compactor-deletes", "No identity but the compactor's may delete objects or write "
                 "block markers (AWS, GCS, Azure).", validate_only_compactor_deletes),
    stack_policy("thanos-identity-workload-identity-scope", "A GKE Workload Identity member acts as one Google service "
                 "account only.", validate_workload_identity_scope, level=EnforcementLevel.ADVISORY),
    resource_policy("thanos-identity-objstore-secret", "The objstore config lives only in a Secret and holds no static "
                    "cloud keys.", validate_objstore_secrecy),
]
