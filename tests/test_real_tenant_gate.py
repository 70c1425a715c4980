"""The entry point with tenants, run for real: prod's planned oauth2-proxy (OIDC, the groups claim passed on) in front
of the planned tenant gate (Caddy at the release the plan pins), both with prod's plan when tenants are configured.
A reader of one tenant reaches the query-frontend with that tenant, whatever tenant or groups header they send; an
operator reaches the global query (every tenant) and Grafana; a reader of two tenants, of none, or a tenant's reader
asking for Grafana or for a path Thanos does not scope by tenant (rules, metadata) is refused. Stand-ins, named: the
identity provider and the three upstreams (they record what they receive)."""

import json
from contextlib import ExitStack

import pytest

from tests.realtools.kubernetes import wait_until
from tests.realtools.oauth2 import QUERY, caddy, identity_provider, oauth2_proxy, recording_upstream, request, sign_in
from tests.support.stacks import run_probe

TENANCY = {"tenants": [{"name": "team-a", "namespaces": ["team-a"], "readers": ["team-a-devs", "team-a.sre"]},
                       {"name": "team-b", "namespaces": ["team-b"], "readers": ["team-b-devs"]}],
           "operators": ["platform-sre"]}
FORGED = {"THANOS-TENANT": "team-b", "X-Forwarded-Groups": "platform-sre"}
"""What a client of team-a might send to read another tenant's data."""


MOVED = {**TENANCY, "tenants": [{"name": "team-a", "namespaces": ["team-a"], "readers": ["team-a.sre"]},
                                {"name": "team-b", "namespaces": ["team-b"], "readers": ["team-b-devs", "team-a-devs"]}]}
"""The same tenants after team-a-devs moved to team-b."""


def plan_entry(tmp_path, tenancy: dict) -> dict:
    """prod's planned oauth2-proxy args, tenant gate config and image, with `tenancy`."""
    probe = (
        f"edit = lambda c: c.update({{'tenancy': {tenancy!r}}})\n"
        "plan = plan_stack('prod', edit=edit)\n"
        "chicago = [r for r in plan.resources if 'chicago' in (r.provider or '') and r.custom]\n"
        "proxy = next(r.inputs for r in chicago if r.type == 'kubernetes:apps/v1:Deployment'\n"
        "             and r.inputs['metadata']['name'] == 'thanos-oauth2-proxy')\n"
        "gate = next(r.inputs for r in chicago if r.type == 'kubernetes:core/v1:Secret'\n"
        "            and r.inputs['metadata']['name'] == 'thanos-tenant-gate-config')\n"
        "image = next(r.inputs for r in chicago if r.type == 'kubernetes:apps/v1:Deployment'\n"
        "             and r.inputs['metadata']['name'] == 'thanos-tenant-gate-pods')\n"
        "image = image['spec']['template']['spec']['containers'][0]['image']\n"
        "print(json.dumps({'args': proxy['spec']['template']['spec']['containers'][0]['args'],\n"
        "                  'gate': gate['stringData']['caddy.json'], 'image': image}))\n")
    proc = run_probe(tmp_path, probe)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def planned_entry(tmp_path_factory):
    return plan_entry(tmp_path_factory.mktemp("probe"), TENANCY)


def test_each_signed_in_user_reads_their_own_tenant_and_operators_read_every_one(planned_entry, tmp_path):
    from tests.realtools.build import _script

    assert planned_entry["image"].endswith(f":{_script('--version', 'caddy')}-alpine")
    gate_upstream = next(a for a in planned_entry["args"] if a.startswith("--upstream="))
    assert [a for a in planned_entry["args"] if a.startswith("--upstream=")] == [gate_upstream]  # only the gate
    assert "thanos-tenant-gate" in gate_upstream
    client_id = next(a.split("=", 1)[1] for a in planned_entry["args"] if a.startswith("--client-id="))
    with ExitStack() as stack:
        frontend, to_frontend = stack.enter_context(recording_upstream("query-frontend"))
        query, to_query = stack.enter_context(recording_upstream("query"))
        grafana, to_grafana = stack.enter_context(recording_upstream("grafana"))
        dials = {"thanos-query-frontend.thanos-global.svc.cluster.local:10902": frontend,
                 "thanos-query.thanos-global.svc.cluster.local:10902": query,
                 "thanos-grafana.thanos-global.svc.cluster.local:3000": grafana}
        for planned in dials:
            assert json.dumps(planned) in planned_entry["gate"], planned
        gate, rewrite = stack.enter_context(caddy(planned_entry["gate"], dials))
        idp, state = stack.enter_context(identity_provider(client_id))
        base = stack.enter_context(oauth2_proxy(planned_entry["args"], gate.removeprefix("http://"), idp))

        def as_user(user: str, groups: list[str], path: str = QUERY) -> int:
            """Sign `user` in with `groups`, then ask for `path` with the forged headers."""
            state["user"], state["groups"] = user, groups
            cookies, _ = sign_in(base)
            return request(base, path, cookies, FORGED)[0]

        assert request(base, QUERY, {}, FORGED)[0] == 302  # no session: to the provider, no upstream reached
        assert to_frontend == to_query == to_grafana == []

        assert as_user("alice", ["team-a-devs", "unrelated"]) == 200
        alice = to_frontend[-1]
        # oauth2-proxy replaced the forged groups with the user's own, joined on one line; the gate the tenant.
        assert alice["tenant"] == ["team-a"] and alice["groups"] == ["team-a-devs,unrelated"], alice
        assert as_user("bob", ["team-b-devs"]) == 200 and to_frontend[-1]["tenant"] == ["team-b"]
        assert as_user("dave", ["team-a.sre"]) == 200 and to_frontend[-1]["tenant"] == ["team-a"]
        assert len(to_frontend) == 3 and to_query == []

        assert as_user("ops", ["platform-sre"]) == 200
        assert to_query[-1]["tenant"] is None and to_query[-1]["path"] == QUERY  # every tenant: no header at all
        assert as_user("ops", ["platform-sre"], "/grafana/d/thanos") == 200 and len(to_grafana) == 1
        assert as_user("ops", ["platform-sre"], "/api/v1/rules") == 200 and to_query[-1]["path"] == "/api/v1/rules"

        refused = {"two tenants": as_user("carol", ["team-a-devs", "team-b-devs"]),
                   "no tenant": as_user("mallory", ["everyone", "team-aXsre", "team-a-devs-old"]),
                   "grafana": as_user("alice", ["team-a-devs"], "/grafana/d/thanos"),
                   "every tenant's rules": as_user("alice", ["team-a-devs"], "/api/v1/rules?type=alert"),
                   "every tenant's metadata": as_user("alice", ["team-a-devs"], "/api/v1/metadata")}
        assert refused == {"two tenants": 403, "no tenant": 403, "grafana": 403, "every tenant's rules": 403,
                           "every tenant's metadata": 403}
        assert (len(to_frontend), len(to_query), len(to_grafana)) == (3, 2, 1)  # nothing refused got through

        # A reader moved to another tenant: the gate loads its rewritten file, no restart (it is watched).
        moved = plan_entry(tmp_path, MOVED)
        assert moved["args"] == planned_entry["args"]  # oauth2-proxy is not touched
        rewrite(moved["gate"])
        assert wait_until(lambda: as_user("alice", ["team-a-devs"]) == 200 and to_frontend[-1]["tenant"] == ["team-b"],
                          15)


def test_basic_auth_on_a_gateway_is_checked_by_the_gate(tmp_path):
    """dev's entry point as a Gateway with basic auth and no tenants: the planned gate (the real Caddy) lets in each
    planned user with their own generated password, as an operator, to the query-frontend (a tenant header the client
    sends is dropped) and Grafana; a wrong password or none gets 401 and reaches nothing; the readiness path answers
    without a password (the Gateway's health check)."""
    import base64

    probe = (
        "def edit(c):\n"
        "    c['global-view']['entry-point'].update({'kind': 'gateway', 'class': 'cloud-provider-kind',\n"
        "                                            'basic-auth-users': ['alice', 'bob']})\n"
        "    c.pop('tenancy')\n"
        "plan = plan_stack('dev', edit=edit)\n"
        "gate = next(r.inputs for r in plan.resources if r.type == 'kubernetes:core/v1:Secret'\n"
        "            and r.inputs['metadata']['name'] == 'thanos-tenant-gate-config')\n"
        "users = {r.name.rsplit('-', 1)[-1]: r.outputs['result'] for r in plan.resources\n"
        "         if r.type == 'random:index/randomPassword:RandomPassword' and '-basic-auth-' in r.name\n"
        "         and not r.name.endswith('-salt-key')}\n"
        "print(json.dumps({'gate': gate['stringData']['caddy.json'], 'users': users}))\n")
    proc = run_probe(tmp_path, probe)
    assert proc.returncode == 0, proc.stderr[-3000:]
    planned = json.loads(proc.stdout.splitlines()[-1])
    passwords = planned["users"]
    assert sorted(passwords) == ["alice", "bob"]

    def basic(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
                "THANOS-TENANT": "team-b"}

    with ExitStack() as stack:
        frontend, to_frontend = stack.enter_context(recording_upstream("query-frontend"))
        grafana, to_grafana = stack.enter_context(recording_upstream("grafana"))
        dials = {"thanos-query-frontend.thanos-global.svc.cluster.local:10902": frontend,
                 "thanos-grafana.thanos-global.svc.cluster.local:3000": grafana}
        gate, _ = stack.enter_context(caddy(planned["gate"], dials))
        refused = {"no password": request(gate, QUERY, {})[0],
                   "wrong password": request(gate, QUERY, {}, basic("alice", "guess"))[0],
                   "bob's password for alice": request(gate, QUERY, {}, basic("alice", passwords["bob"]))[0]}
        assert refused == {"no password": 401, "wrong password": 401, "bob's password for alice": 401}
        assert to_frontend == to_grafana == []
        assert request(gate, "/-/ready", {})[0] == 200 and to_frontend == []  # answered by the gate itself
        for user, password in passwords.items():
            assert request(gate, QUERY, {}, basic(user, password))[0] == 200
        assert [(r["path"], r["tenant"]) for r in to_frontend] == [(QUERY, None), (QUERY, None)]
        assert request(gate, "/grafana/d/thanos", {}, basic("alice", passwords["alice"]))[0] == 200
        assert len(to_grafana) == 1
