"""Object storage and workload identity per cloud: safe buckets, replication, least privilege, one SA per trust."""

import json

import parliament
import pytest

from components.storage import aws as cloud_aws
from components.storage.identity import COMPONENT_ROLES, DELETER, READER, WRITER, identity_name
from config.storage import AwsStorage

from tests.support.stacks import run_probe, stack_config

BUCKET_ARN = "arn:aws:s3:::acme-thanos"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PROD_KEY = "arn:aws:kms:us-east-1:111122223333:key/7f3b2c1e-0d4a-4c6b-9e8f-1a2b3c4d5e6f"
PROD_REPLICA_KEY = "arn:aws:kms:us-west-2:111122223333:key/2b8e6d4c-3f1a-4e7b-8c9d-6f5e4d3c2b1a"
WRITE_ACTIONS = {"s3:PutObject"}
DELETE_ACTIONS = {"s3:DeleteObject", "s3:DeleteObjectVersion"}


def lint(document: dict) -> list[str]:
    policy = parliament.analyze_policy_string(json.dumps(document))
    return [f"{f.issue}: {f.detail}" for f in policy.findings]


def actions(document: dict) -> set[str]:
    return {a for s in document["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


@pytest.mark.parametrize("role", [READER, WRITER, DELETER])
@pytest.mark.parametrize("kms", [None, KEY_ARN])
def test_component_policies_pass_parliament(role, kms):
    assert lint(cloud_aws.component_policy(role, BUCKET_ARN, kms)) == []


def test_replication_and_trust_policies_pass_parliament():
    assert lint(cloud_aws.replication_policy(BUCKET_ARN, BUCKET_ARN + "-dr", KEY_ARN, KEY_ARN)) == []
    assert lint(cloud_aws.replication_policy(BUCKET_ARN, BUCKET_ARN + "-dr", None, None)) == []


def test_the_replication_role_trusts_s3_for_its_own_bucket_and_account_only():
    """No confused deputy: S3 acting for another account's bucket cannot assume the role."""
    statement = cloud_aws.replication_trust_policy("acme-thanos", "123456789012")["Statement"][0]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"},
                                      "ArnLike": {"aws:SourceArn": "arn:aws:s3:::acme-thanos"}}
    gov = cloud_aws.replication_trust_policy("acme-thanos", "123456789012", "aws-us-gov")["Statement"][0]
    assert gov["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws-us-gov:s3:::acme-thanos"}


def test_the_kms_key_is_usable_only_through_s3_in_its_region():
    kms = [s for s in cloud_aws.component_policy(WRITER, BUCKET_ARN, KEY_ARN)["Statement"] if s["Sid"] == "BucketKey"]
    assert kms[0]["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    assert not any("kms:ViaService" in json.dumps(s.get("Condition"))
                   for s in cloud_aws.component_policy(WRITER, BUCKET_ARN, None)["Statement"])


def test_parliament_does_flag_a_bad_policy():
    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": BUCKET_ARN}]}
    assert lint(bad)


def test_privilege_matrix():
    reader, writer, deleter = (actions(cloud_aws.component_policy(r, BUCKET_ARN, None)) for r in (READER, WRITER, DELETER))
    assert not reader & (WRITE_ACTIONS | DELETE_ACTIONS)
    assert WRITE_ACTIONS <= writer and not writer & DELETE_ACTIONS
    assert "s3:DeleteObject" in deleter
    assert [c for c, r in COMPONENT_ROLES.items() if r == DELETER] == ["compactor"]
    assert {c for c, r in COMPONENT_ROLES.items() if r == READER} == {"store", "bucket-web", "bucket-verify"}
    for doc in (cloud_aws.component_policy(r, BUCKET_ARN, KEY_ARN) for r in (READER, WRITER, DELETER)):
        assert not any("*" in a for a in actions(doc))


def test_every_uploader_is_denied_other_storage_classes_and_customer_keys():
    """A copy in place to DEEP_ARCHIVE, or with a customer-provided key, makes a block unreadable without deleting
    it: denied to whoever may PutObject, only when the request carries the header (tests/test_real_bucket_iam.py
    has MinIO judge the documents)."""
    for role in (WRITER, DELETER):
        denies = {s["Sid"]: s for s in cloud_aws.component_policy(role, BUCKET_ARN, None)["Statement"]
                  if s["Effect"] == "Deny" and s["Action"] == ["s3:PutObject"]}
        assert denies["OnlyStandardStorageClass"]["Condition"] == {
            "StringNotEquals": {"s3:x-amz-storage-class": "STANDARD"}, "Null": {"s3:x-amz-storage-class": "false"}}
        assert denies["NoCustomerProvidedKeys"]["Condition"] == {
            "Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}}
    assert not any(s["Effect"] == "Deny" for s in cloud_aws.component_policy(READER, BUCKET_ARN, None)["Statement"])


def test_irsa_trust_is_bound_to_exactly_one_service_account():
    trust = cloud_aws.irsa_trust_policy("arn:aws:iam::1:oidc-provider/oidc.eks/id/X", "https://oidc.eks/id/X",
                                        "thanos", "store")
    condition = trust["Statement"][0]["Condition"]["StringEquals"]
    assert condition == {"oidc.eks/id/X:sub": "system:serviceaccount:thanos:thanos-store",
                         "oidc.eks/id/X:aud": "sts.amazonaws.com"}
    assert "StringLike" not in trust["Statement"][0]["Condition"]


def test_lifecycle_never_expires_or_freezes_current_objects():
    storage = AwsStorage(provider="aws", bucket="acme-thanos", infrequent_access_after="90d")
    rules = cloud_aws.lifecycle_rules(storage)
    for rule in rules:
        expiration = rule.get("expiration", {})
        assert set(expiration) <= {"expired_object_delete_marker"}
        for transition in rule.get("transitions", []):
            assert transition["storage_class"] in ("STANDARD_IA", "GLACIER_IR")
    ids = {r["id"] for r in rules}
    assert {"abort-incomplete-multipart-uploads", "expire-noncurrent-versions"} <= ids


def test_the_dr_copy_keeps_deleted_versions_longer_than_the_primary():
    storage = AwsStorage(provider="aws", bucket="acme-thanos", replication={"destination": "us-west-2"})
    noncurrent = {dr: next(r["noncurrent_version_expiration"]["noncurrent_days"] for r in
                           cloud_aws.lifecycle_rules(storage, dr_copy=dr) if "noncurrent_version_expiration" in r)
                  for dr in (False, True)}
    assert noncurrent == {False: 30, True: 90}
    with pytest.raises(ValueError, match="dr-noncurrent-version-expiration 30d is not longer than"):
        AwsStorage(provider="aws", bucket="acme-thanos", replication={"destination": "us-west-2"},
                   dr_noncurrent_version_expiration="30d")
    with pytest.raises(ValueError, match="needs replication"):
        AwsStorage(provider="aws", bucket="acme-thanos", dr_noncurrent_version_expiration="120d")


def inputs_of(planned, stack, type_token):
    return [r["inputs"] for r in planned[stack].resources(type_token)]


def test_aws_buckets_are_versioned_encrypted_private_and_replicated_with_rtc(planned):
    stack = "prod"
    buckets = {i["bucket"] for i in inputs_of(planned, stack, "aws:s3/bucket:Bucket")}
    assert buckets == {"acme-thanos-prod-us-east-1", "acme-thanos-prod-us-east-1-dr",
                       "acme-thanos-prod-us-west-2", "acme-thanos-prod-us-west-2-dr"}
    assert [i["forceDestroy"] for i in inputs_of(planned, stack, "aws:s3/bucket:Bucket")] == [False] * 4
    versioning = inputs_of(planned, stack, "aws:s3/bucketVersioning:BucketVersioning")
    assert len(versioning) == 4 and all(v["versioningConfiguration"]["status"] == "Enabled" for v in versioning)
    sse = inputs_of(planned, stack,
                    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert len(sse) == 4
    # us-east-1 uses its customer KMS keys (the DR copy in us-west-2 the replica key); us-west-2 uses SSE-S3.
    by_bucket = {s["bucket"]: s["rules"][0] for s in sse}
    assert by_bucket["acme-thanos-prod-us-east-1"] == {"applyServerSideEncryptionByDefault": {
        "sseAlgorithm": "aws:kms", "kmsMasterKeyId": PROD_KEY}, "bucketKeyEnabled": True}
    assert by_bucket["acme-thanos-prod-us-east-1-dr"] == {"applyServerSideEncryptionByDefault": {
        "sseAlgorithm": "aws:kms", "kmsMasterKeyId": PROD_REPLICA_KEY}, "bucketKeyEnabled": True}
    for bucket in ("acme-thanos-prod-us-west-2", "acme-thanos-prod-us-west-2-dr"):
        assert by_bucket[bucket] == {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}
    blocks = inputs_of(planned, stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert len(blocks) == 4 and all(all(b[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                                       "restrictPublicBuckets")) for b in blocks)
    ownership = inputs_of(planned, stack, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert [o["rule"]["objectOwnership"] for o in ownership] == ["BucketOwnerEnforced"] * 4
    replication = inputs_of(planned, stack, "aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    assert len(replication) == 2
    for config in replication:
        rule = config["rules"][0]
        assert rule["destination"]["replicationTime"] == {"status": "Enabled", "time": {"minutes": 15}}
        assert rule["destination"]["metrics"]["eventThreshold"] == {"minutes": 15}
        assert rule["deleteMarkerReplication"]["status"] == "Enabled"
        assert rule["destination"]["bucket"].endswith("-dr")


def test_aws_replication_waits_for_versioning(planned):
    by_urn = {r["urn"]: r for r in planned["prod"].plan["resources"]}
    configs = planned["prod"].resources("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    assert len(configs) == 2
    for config in configs:
        types = [by_urn[u]["type"] for u in config["dependsOn"]]
        assert types.count("aws:s3/bucketVersioning:BucketVersioning") == 2


def test_aws_roles_one_per_component_and_cluster_each_trusting_one_sa(planned):
    roles = planned["prod"].resources("aws:iam/role:Role")
    irsa = [r for r in roles if "replication" not in r["name"]]
    names = sorted(r["inputs"]["name"] for r in irsa)
    assert "thanos-prod-chicago-compactor" in names and "thanos-prod-seattle-compactor" in names
    assert len(names) == len(set(names)) == 16  # 7 components x 2 clusters, and a DR store gateway reader per copy
    assert "thanos-prod-seattle-store-dr-us-east-1" in names and "thanos-prod-chicago-store-dr-us-west-2" in names
    for role in irsa:
        trust = json.loads(role["inputs"]["assumeRolePolicy"])
        condition = trust["Statement"][0]["Condition"]["StringEquals"]
        subs = [v for k, v in condition.items() if k.endswith(":sub")]
        assert len(subs) == 1 and subs[0].startswith("system:serviceaccount:thanos:thanos-")
        assert [v for k, v in condition.items() if k.endswith(":aud")] == ["sts.amazonaws.com"]


@pytest.mark.parametrize("stack, resource_type, key, limit", [
    ("prod", "aws:iam/role:Role", "name", 64),
    ("gcp", "gcp:serviceaccount/account:Account", "accountId", 30),
    ("azure", "azure-native:managedidentity:UserAssignedIdentity", "resourceName", 128)])
def test_cloud_identities_are_named_for_their_environment(planned, stack, resource_type, key, limit):
    # Two stacks in one account, project or resource group (prod and staging) must never claim the same identity.
    names = [r["inputs"][key] for r in planned[stack].resources(resource_type) if "replication" not in r["name"]]
    environment = stack_config(stack)["environment"]
    assert names and all(len(n) <= limit for n in names), names
    assert len(set(names)) == len(names)
    for name in names:
        assert name.startswith(f"thanos-{environment}-"), name


def test_identity_names_shorten_with_a_digest_and_stay_unique():
    assert identity_name("prod", "chicago", "store", 64) == "thanos-prod-chicago-store"
    long = [identity_name(env, "us-central1-chicago", "store-dr-us-east1", 30) for env in ("prod", "staging")]
    assert all(len(n) <= 30 for n in long) and len(set(long)) == 2, long


def test_aws_role_policies_pass_parliament_and_only_the_compactor_deletes(planned):
    for policy in planned["prod"].resources("aws:iam/rolePolicy:RolePolicy"):
        document = json.loads(policy["inputs"]["policy"])
        assert lint(document) == [], policy["name"]
        if "replication" in policy["name"]:
            continue
        deletes = bool(actions(document) & DELETE_ACTIONS)
        assert deletes == policy["name"].endswith("-compactor"), policy["name"]


def test_service_accounts_carry_the_role_arns(planned):
    accounts = {o["metadata"]["name"]: o for o in planned["prod"].objects("ServiceAccount", cluster="chicago")
                if o["metadata"]["namespace"] == "thanos"}
    annotation = accounts["thanos-store"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert annotation.startswith("arn:aws:iam::") and annotation.endswith("-store")
    # 16 components' (the TLS probe's included) and the DR store gateway's (of us-west-2's copy)
    assert len(accounts) == 17 and all(a["automountServiceAccountToken"] is False for a in accounts.values())
    for account in ("thanos-oauth2-proxy", "thanos-tls-probe"):  # no bucket identity where none is needed
        assert "annotations" not in accounts[account]["metadata"], account


def test_gcs_buckets(planned):
    buckets = inputs_of(planned, "gcp", "gcp:storage/bucket:Bucket")
    assert len(buckets) == 2
    for bucket in buckets:
        assert bucket["versioning"] == {"enabled": True} and bucket["uniformBucketLevelAccess"] is True
        assert bucket["publicAccessPrevention"] == "enforced" and bucket["rpo"] == "ASYNC_TURBO"
        assert len(bucket["customPlacementConfig"]["dataLocations"]) == 2
        assert bucket["softDeletePolicy"]["retentionDurationSeconds"] == 30 * 86400
        # A writer may overwrite (GCS needs delete for it), never under a key only it holds.
        assert bucket["encryption"] == {"customerSuppliedEncryptionEnforcementConfig": {"restrictionMode": "FullyRestricted"}}
        assert {r["action"]["type"] for r in bucket["lifecycleRules"]} == {"Delete", "AbortIncompleteMultipartUpload"}
        delete = next(r for r in bucket["lifecycleRules"] if r["action"]["type"] == "Delete")
        assert delete["condition"]["withState"] == "ARCHIVED"
    assert all(r["protect"] and r["retainOnDelete"] for r in planned["gcp"].resources("gcp:storage/bucket:Bucket"))


def test_gcp_privileges_and_workload_identity(planned):
    """Readers view, the compactor gets objectUser, and writers get a custom role of exactly object get, list, create
    and delete: GCS needs delete to overwrite, so a writer without it cannot replace a failed upload (the trade-off:
    on GCS alone, block writers may delete)."""
    from components.storage.gcp import WRITER_PERMISSIONS, writer_role_id

    custom = {f"projects/{r['inputs']['project']}/roles/{r['inputs']['roleId']}": r["inputs"]
              for r in planned["gcp"].resources("gcp:projects/iAMCustomRole:IAMCustomRole")}
    assert sorted(custom) == sorted(f"projects/acme-observability/roles/{writer_role_id(b)}"
                                    for b in ("acme-thanos-prod-us", "acme-thanos-prod-eu"))
    for role in custom.values():
        assert sorted(role["permissions"]) == sorted(WRITER_PERMISSIONS) == [
            "storage.objects.create", "storage.objects.delete", "storage.objects.get", "storage.objects.list"]
    members = planned["gcp"].resources("gcp:storage/bucketIAMMember:BucketIAMMember")
    by_role = {READER: set(), WRITER: set(), DELETER: set()}
    for member in members:
        component = member["name"].split("-objectstore-")[1].split("-", 1)[1].rsplit("-", 1)[0]
        by_role[COMPONENT_ROLES[component]].add(member["inputs"]["role"])
    assert by_role[READER] == {"roles/storage.objectViewer"}
    assert by_role[WRITER] == set(custom)
    assert by_role[DELETER] == {"roles/storage.objectUser"}
    assert len(members) == 14, "one binding per component and cluster"
    pools = {"iowa": "acme-observability.svc.id.goog", "belgium": "acme-eu-clusters.svc.id.goog"}
    bindings = planned["gcp"].resources("gcp:serviceaccount/iAMMember:IAMMember")
    assert len(bindings) == 14
    for binding in bindings:
        cluster = binding["name"].split("-objectstore-")[1].split("-")[0]
        assert binding["inputs"]["role"] == "roles/iam.workloadIdentityUser"
        assert binding["inputs"]["member"].startswith(f"serviceAccount:{pools[cluster]}[thanos/thanos-")


def test_azure_accounts(planned):
    accounts = planned["azure"].resources("azure-native:storage:StorageAccount")
    assert len(accounts) == 4
    for account in accounts:
        i = account["inputs"]
        assert i["kind"] == "StorageV2" and i["sku"]["name"] == "Standard_RAGZRS"
        assert i["allowSharedKeyAccess"] is False and i["allowBlobPublicAccess"] is False
        assert i["minimumTlsVersion"] == "TLS1_2"
        assert account["protect"] and account["retainOnDelete"]
        # The default keeps the public endpoint (no private endpoint is created here); Entra ID is the only way in.
        assert i["publicNetworkAccess"] == "Enabled"
    services = inputs_of(planned, "azure", "azure-native:storage:BlobServiceProperties")
    assert len(services) == 4
    for service in services:
        assert service["isVersioningEnabled"] and service["changeFeed"]["enabled"]
        assert service["deleteRetentionPolicy"]["enabled"]
    assert [c["publicAccess"] for c in inputs_of(planned, "azure", "azure-native:storage:BlobContainer")] == ["None"] * 4
    policies = inputs_of(planned, "azure", "azure-native:storage:ObjectReplicationPolicy")
    assert len(policies) == 4 and sum(p["objectReplicationPolicyId"] == "default" for p in policies) == 2


def test_azure_identities_federated_to_one_sa_with_scoped_roles(planned):
    credentials = inputs_of(planned, "azure", "azure-native:managedidentity:FederatedIdentityCredential")
    assert len(credentials) == 16  # 7 components in each of the 2 clusters, and each DR copy's store gateway
    for credential in credentials:
        assert credential["subject"].startswith("system:serviceaccount:thanos:thanos-")
        assert credential["audiences"] == ["api://AzureADTokenExchange"]
    assignments = planned["azure"].resources("azure-native:authorization:RoleAssignment")
    assert len(assignments) == 16
    for assignment in assignments:
        inputs = assignment["inputs"]
        assert "/containers/thanos" in inputs["scope"]
        component = next((c for c in COMPONENT_ROLES if assignment["name"].endswith(f"-{c}")), "store-dr")
        if component == "store-dr":  # the DR copy's store gateway reads the DR account only
            assert "dr/blobServices" in inputs["scope"] and inputs["roleDefinitionId"].endswith("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1")
        elif COMPONENT_ROLES[component] == DELETER:
            assert inputs["roleDefinitionId"].endswith("ba92f5b4-2d11-453d-a403-e96b0029c9fe")
        elif COMPONENT_ROLES[component] == READER:
            assert inputs["roleDefinitionId"].endswith("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1")
        else:
            assert "roleDefinitions" in inputs["roleDefinitionId"] and "ba92f5b4" not in inputs["roleDefinitionId"]
            # no block markers, and no Set Blob Tier (Archive changes the current version in place)
            assert inputs["condition"].count("ActionMatches") == 3 and inputs["conditionVersion"] == "2.0"
            assert "SubOperationMatches{'Blob.Write.Tier'})) OR (@Resource[Microsoft.Storage/storageAccounts/" \
                   "blobServices/containers/blobs:path] StringNotLike '*'))" in inputs["condition"]
    writer = inputs_of(planned, "azure", "azure-native:authorization:RoleDefinition")[0]
    assert not any("delete" in a for p in writer["permissions"] for a in p["dataActions"] + p["actions"])


def test_objstore_configs_hold_no_static_keys_in_the_clouds():
    import yaml

    from components.storage import azure as cloud_azure
    from components.storage import gcp as cloud_gcp
    from config.storage import AzureStorage, GcpStorage

    s3 = yaml.safe_load(cloud_aws.objstore_config(AwsStorage(provider="aws", bucket="b-1"), "us-east-1"))
    assert s3["config"]["aws_sdk_auth"] is True and "secret_key" not in s3["config"]
    gcs = yaml.safe_load(cloud_gcp.objstore_config(GcpStorage(provider="gcp", project="proj-123", bucket="b-1",
                                                              location="US")))
    assert set(gcs["config"]) == {"bucket"}
    azure = yaml.safe_load(cloud_azure.objstore_config(AzureStorage(provider="azure", resource_group="rg",
                                                                    account="acct1")))
    assert set(azure["config"]) == {"storage_account", "container"}


def test_every_aws_permission_and_bucket_policy_in_the_plan_passes_parliament(planned):
    """Trust policies are asserted above instead: parliament reads every policy as an identity or resource policy
    (it wants a Resource and knows only SAML/Cognito/web federation), so it cannot judge an IRSA trust document."""
    documents = [r for r in planned["prod"].plan["resources"]
                 if r["type"] in ("aws:iam/rolePolicy:RolePolicy", "aws:s3/bucketPolicy:BucketPolicy")]
    # Per region: 7 component roles, replication, the DR store gateway's reader; 4 bucket policies.
    assert len(documents) == 18 + 4
    for resource in documents:
        assert lint(json.loads(resource["inputs"]["policy"])) == [], resource["name"]


def test_every_bucket_denies_requests_without_tls(planned):
    policies = planned["prod"].resources("aws:s3/bucketPolicy:BucketPolicy")
    assert len(policies) == 4
    for policy in policies:
        bucket = policy["inputs"]["bucket"]
        assert json.loads(policy["inputs"]["policy"]) == {"Version": "2012-10-17", "Statement": [{
            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}


def test_the_kms_key_reaches_objstore_roles_and_replication(planned):
    import yaml

    policies = {r["name"]: json.loads(r["inputs"]["policy"]) for r in planned["prod"].resources("aws:iam/rolePolicy:RolePolicy")}
    chicago = {n: d for n, d in policies.items() if n.startswith("us-east-1-objectstore-chicago-")}
    seattle = {n: d for n, d in policies.items() if n.startswith("us-west-2-objectstore-seattle-")}
    assert len(chicago) == len(seattle) == 7
    for name, document in chicago.items():
        kms = [s for s in document["Statement"] if s["Sid"] == "BucketKey"]
        assert len(kms) == 1 and kms[0]["Resource"] == [PROD_KEY], name
        assert "kms:Decrypt" in kms[0]["Action"]
        assert ("kms:GenerateDataKey" in kms[0]["Action"]) == (not name.endswith(("-store", "-bucket-web", "-bucket-verify")))
    assert not any(s["Sid"] == "BucketKey" for d in seattle.values() for s in d["Statement"])
    replication = policies["us-east-1-objectstore-replication"]["Statement"]
    assert {s["Sid"]: s["Resource"] for s in replication if s["Sid"] in ("DecryptSource", "EncryptDestination")} == {
        "DecryptSource": [PROD_KEY], "EncryptDestination": [PROD_REPLICA_KEY]}
    rule = next(r for r in planned["prod"].resources("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
                if r["name"].startswith("us-east-1"))["inputs"]["rules"][0]
    assert rule["destination"]["encryptionConfiguration"] == {"replicaKmsKeyId": PROD_REPLICA_KEY}
    assert rule["sourceSelectionCriteria"] == {"sseKmsEncryptedObjects": {"status": "Enabled"}}
    objstore = yaml.safe_load(cloud_aws.objstore_config(AwsStorage(provider="aws", bucket="b-1", kms_key_arn=PROD_KEY),
                                                        "us-east-1"))
    assert objstore["config"]["sse_config"] == {"type": "SSE-KMS", "kms_key_id": PROD_KEY}


def test_azure_dr_copies_expire_blocks_after_the_longest_retention(planned):
    """Object replication copies no deletes: each DR account's lifecycle drops a block once the source has (2y plus
    the 48h deletion delay); the primary accounts leave current blobs to the compactor."""
    policies = {p["inputs"]["accountName"]: p["inputs"]["policy"]["rules"]
                for p in planned["azure"].resources("azure-native:storage:ManagementPolicy")}
    accounts = {a["inputs"]["accountName"] for a in planned["azure"].resources("azure-native:storage:StorageAccount")}
    copies = {a for a in accounts if a.endswith("dr")}
    assert copies and len(copies) == 2, accounts
    for account, rules in policies.items():
        expiring = [r for r in rules if r["name"] == "expire-copied-blocks"]
        if account in copies:
            assert expiring[0]["definition"]["actions"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] == 733
        else:
            assert not expiring, account


# Every other type the shipped stacks plan, and why `pulumi destroy` deleting it loses neither blocks nor what guards
# them. A new type in a plan must be added here or to the pack's PROTECTED_TYPES: the test below fails until it is.
HOLDS_NO_DATA = {
    "aws:iam/role:Role": "IRSA roles: `pulumi up` creates them again (the replication role is kept: checked below)",
    "aws:iam/rolePolicy:RolePolicy": "a role's grant, created again with it",
    "aws:route53/healthCheck:HealthCheck": "DNS failover of the global entry point",
    "aws:route53/record:Record": "DNS names of the leaves and the entry point",
    "gcp:dns/recordSet:RecordSet": "DNS names",
    "gcp:serviceaccount/account:Account": "a component's identity",
    "gcp:serviceaccount/iAMMember:IAMMember": "a Workload Identity binding",
    "azure-native:authorization:RoleAssignment": "a component's grant on the container",
    "azure-native:authorization:RoleDefinition": "the writer role",
    "azure-native:managedidentity:FederatedIdentityCredential": "a Workload Identity federation",
    "azure-native:managedidentity:UserAssignedIdentity": "a component's identity",
    "azure-native:privatedns:PrivateRecordSet": "DNS names",
    "random:index/randomPassword:RandomPassword": "credentials, generated again: a re-up sets them on the kept MinIO data "
                                                  "and its users (its setup Jobs; tests/test_real_engine.py)",
    "pulumi:pulumi:StackReference": "reads another stack",
}
"""Cloud and utility types that hold no data; Kubernetes objects are covered by the namespaces (below)."""


@pytest.mark.parametrize("stack", ["prod", "gcp", "azure", "dev"])
def test_destroy_under_protect_data_keeps_every_resource_that_holds_or_guards_the_data(planned, stack):
    from policies.thanos_policies.storage import PROTECTED_TYPES

    resources = [r for r in planned[stack].plan["resources"] if r["custom"]]
    claimed = {r["inputs"]["metadata"]["namespace"] for r in planned[stack].resources("kubernetes:apps/v1:StatefulSet")
               if r["inputs"]["spec"].get("volumeClaimTemplates")} | {
        r["inputs"]["metadata"]["namespace"] for r in planned[stack].resources("kubernetes:core/v1:PersistentVolumeClaim")}
    kept = [r for r in resources if r["type"] in PROTECTED_TYPES or r["name"].endswith("-replication")
            or r["type"] == "kubernetes:core/v1:Namespace" and r["inputs"]["metadata"]["name"] in claimed]
    unknown = sorted({r["type"] for r in resources} - set(PROTECTED_TYPES) - set(HOLDS_NO_DATA)
                     - {t for t in (r["type"] for r in resources) if t.startswith(("kubernetes:", "tls:", "pulumi:providers:"))})
    assert unknown == [], f"new resource types without a decision on their protection: {unknown}"
    protect = stack_config(stack).get("protect-data", True)
    assert kept and all(r["protect"] == r["retainOnDelete"] == protect for r in kept), \
        [(r["name"], r["protect"], r["retainOnDelete"]) for r in kept if r["protect"] != protect]
    if stack == "azure":  # the container is the blocks: its deletion is what issue 20 found unprotected
        assert len([r for r in kept if r["type"] == "azure-native:storage:BlobContainer"]) == 4
    if stack == "prod":
        names = {r["name"] for r in kept if r["type"].startswith("aws:iam/")}
        assert names == {"us-east-1-objectstore-replication", "us-west-2-objectstore-replication"}
    # Claims: every StatefulSet retains them, and every namespace holding them is protected with the data (above).
    assert {r["inputs"]["metadata"]["name"] for r in kept if r["type"] == "kubernetes:core/v1:Namespace"} == claimed
    assert len(claimed) >= 2
    for statefulset in planned[stack].resources("kubernetes:apps/v1:StatefulSet"):
        if not statefulset["inputs"]["spec"].get("volumeClaimTemplates"):
            continue  # no claims to keep (the memcached pools)
        assert statefulset["inputs"]["spec"]["persistentVolumeClaimRetentionPolicy"] == {
            "whenDeleted": "Retain", "whenScaled": "Retain"}, statefulset["name"]


def test_protect_data_off_is_refused_by_the_pack_for_every_protected_type(tmp_path):
    """protect-data: false on prod: nothing is protected, and the pack names every bucket and guarding setting."""
    proc = run_probe(tmp_path, """
from preflight import policy
plan = plan_stack("prod", edit=lambda c: c.update({"protect-data": False}))
found = policy.run_policies(plan, {})
print(json.dumps(sorted({v.urn.rsplit("::", 1)[-1] for v in found if v.policy == "thanos-storage-protected"})))
print(json.dumps(sorted({r.type for r in plan.resources if r.protect})))
""")
    assert proc.returncode == 0, proc.stderr
    flagged, protected = (json.loads(line) for line in proc.stdout.splitlines()[-2:])
    assert protected == []
    assert "us-east-1-objectstore-bucket" in flagged and "us-east-1-objectstore-bucket-versioning" in flagged
    assert "us-east-1-objectstore-replication" in flagged and "us-west-2-objectstore-dr-bucket-tls-only" in flagged
    assert "us-east-1-objectstore-dr-bucket-object-lock" in flagged
    # 4 buckets x (bucket + 6 settings), 2 DR copies' Object Lock, 2 replication configs
    assert len(flagged) == 2 * 2 * 7 + 2 + 2, flagged


def test_a_service_account_email_is_built_as_google_names_it():
    """The bindings name the account by its e-mail before it exists: plain and domain-scoped projects."""
    from components.storage.gcp import service_account_email

    assert service_account_email("thanos-store", "acme-observability") == \
        "thanos-store@acme-observability.iam.gserviceaccount.com"
    assert service_account_email("thanos-store", "example.com:metrics") == \
        "thanos-store@metrics.example.com.iam.gserviceaccount.com"
