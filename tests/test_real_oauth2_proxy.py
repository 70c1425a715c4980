"""The real oauth2-proxy (built from its Go module at the release the plan pins) with the entry point's planned
args: no request reaches the global query-frontend without a login, whatever X-Forwarded-Uri it claims
(GHSA-7x63-xv5r-3p2x), and health checks get oauth2-proxy's own /ping."""

import pytest

from tests.realtools.oauth2 import QUERY, identity_provider, oauth2_proxy, recording_upstream, request, sign_in, status


@pytest.fixture
def planned_args(planned):
    proxy = next(r for r in planned["prod"].plan["resources"] if r["type"] == "kubernetes:apps/v1:Deployment"
                 and r["inputs"]["metadata"]["name"] == "thanos-oauth2-proxy" and "chicago" in r["provider"])
    container = proxy["inputs"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith(":v7.15.6")
    return container["args"]


TRICK = {"X-Forwarded-Uri": "/-/ready"}


def paths(seen: list[dict]) -> list[str]:
    """The paths the stand-in upstream was asked for."""
    return [r["path"] for r in seen]


def test_the_planned_proxy_lets_no_request_through_without_a_login(planned_args):
    with recording_upstream("upstream reached") as (address, seen), oauth2_proxy(planned_args, address) as base:
        assert status(f"{base}{QUERY}")[0] == 302  # to the IdP
        assert status(f"{base}{QUERY}", TRICK)[0] == 302
        assert status(f"{base}/-/ready")[0] == 302
        assert status(f"{base}/ping") == (200, "OK")
        assert paths(seen) == []


def test_the_old_skip_auth_route_let_the_header_trick_through(planned_args):
    # What the plan shipped before (and what this release still allows): the trick reaches the query-frontend.
    old = [*planned_args, "--skip-auth-route=GET=^/-/ready$"]
    with recording_upstream("upstream reached") as (address, seen), oauth2_proxy(old, address) as base:
        assert status(f"{base}{QUERY}")[0] == 302
        assert status(f"{base}{QUERY}", TRICK) == (200, "upstream reached")
        assert paths(seen) == [QUERY]


def scaled(args: list[str], refresh: str) -> list[str]:
    """The planned args with the refresh period shortened to `refresh` (the test cannot wait an hour)."""
    return [f"--cookie-refresh={refresh}" if a.startswith("--cookie-refresh=") else a for a in args]


def test_the_planned_sessions_last_a_working_day_and_are_revalidated_every_hour(planned_args):
    assert "--cookie-refresh=1h" in planned_args and "--cookie-expire=12h" in planned_args
    client_id = next(a.split("=", 1)[1] for a in planned_args if a.startswith("--client-id="))
    with recording_upstream("upstream reached") as (address, seen), identity_provider(client_id) as (idp, _), \
            oauth2_proxy(planned_args, address, idp) as base:
        cookies, set_cookies = sign_in(base)
        assert "Max-Age=43200" in next(v for v in set_cookies if v.startswith("_oauth2_proxy=")), set_cookies
        assert request(base, QUERY, cookies)[0] == 200 and paths(seen) == [QUERY]


def test_a_revoked_account_is_signed_out_at_the_next_refresh(planned_args):
    """The planned proxy, its refresh period cut to 2 s: a valid account's session is refreshed at the provider and
    goes on; once the provider refuses the refresh (account disabled, session revoked) the next request is sent to
    sign in, and the upstream is not reached."""
    import time

    client_id = next(a.split("=", 1)[1] for a in planned_args if a.startswith("--client-id="))
    with recording_upstream("upstream reached") as (address, seen), identity_provider(client_id) as (idp, state), \
            oauth2_proxy(scaled(planned_args, "2s"), address, idp) as base:
        cookies, _ = sign_in(base)
        assert request(base, QUERY, cookies)[0] == 200
        time.sleep(3.5)
        code, _, set_cookies = request(base, QUERY, cookies)
        assert code == 200 and state["refreshes"] == 1
        for value in set_cookies:  # the refreshed session
            name, _, rest = value.partition("=")
            cookies[name] = rest.split(";", 1)[0]
        state["revoked"] = True
        time.sleep(3.5)
        code, headers, _ = request(base, QUERY, cookies)
        assert code == 302 and "/authorize?" in headers["Location"], (code, headers)
        assert state["refreshes"] >= 2 and paths(seen) == [QUERY, QUERY]


def test_without_a_refresh_period_a_revoked_account_kept_its_session(planned_args):
    # What the plan shipped before (oauth2-proxy's defaults: 168h, never refreshed): the provider is never asked again.
    import time

    old = [a for a in planned_args if not a.startswith(("--cookie-refresh=", "--cookie-expire="))]
    client_id = next(a.split("=", 1)[1] for a in planned_args if a.startswith("--client-id="))
    with recording_upstream("upstream reached") as (address, seen), identity_provider(client_id) as (idp, state), \
            oauth2_proxy(old, address, idp) as base:
        cookies, _ = sign_in(base)
        state["revoked"] = True
        time.sleep(3.5)
        assert request(base, QUERY, cookies)[0] == 200 and state["refreshes"] == 0
