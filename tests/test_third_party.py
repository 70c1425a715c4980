"""The policy pack on deployments this project did not write: a corpus of public deployment patterns (kube-thanos,
the Bitnami and community charts, prometheus-operator CRs), each with its expected findings and silences and the
reason for each, run in-process and through the real analyzer gRPC protocol as the Pulumi CLI drives it."""

import pytest
from pulumi.runtime.proto import analyzer_pb2

from .corpus import bitnami, community, incidents, kube_thanos, observatorium, prometheus_operator, stevehipwell
from .corpus.run import findings
from .test_policy_incidents import analyzer, configure, struct  # noqa: F401 (the analyzer fixture)

pytestmark = pytest.mark.usefixtures("record_policy_lines")
FIXTURES = [kube_thanos.FIXTURE, bitnami.FIXTURE, community.FIXTURE, prometheus_operator.FIXTURE, *incidents.FIXTURES,
            stevehipwell.FIXTURE, observatorium.FIXTURE]


def matched(found: list[tuple[str, str, str]], fixture) -> tuple[list, list]:
    """(findings no expectation explains, expectations no finding meets): both must be empty."""
    unexplained, unmet = list(found), []
    for expected in fixture.findings:
        hit = next((f for f in unexplained if f[0] == expected.policy and f[1] == expected.resource
                    and expected.message in f[2]), None)
        if hit is None:
            unmet.append(expected)
        else:
            unexplained.remove(hit)
    return unexplained, unmet


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.name)
def test_real_weaknesses_are_reported_and_correct_patterns_are_not(fixture):
    found = findings(fixture)
    unexplained, unmet = matched(found, fixture)
    assert unexplained == [] and unmet == []
    assert all(e.kind in ("true", "opinion") and e.why for e in fixture.findings)
    for policy, why in fixture.silent:
        assert [f for f in found if f[0] == policy] == [], why


def analyze_over_grpc(analyzer, fixture) -> list[tuple[str, str, str]]:  # noqa: F811
    configure(analyzer, {})
    names = {r["urn"]: r["name"] for r in fixture.resources}

    def message(diagnostic):  # the analyzer sends "<policy description>\n<message>", as the CLI prints it
        return diagnostic.message.split("\n", 1)[1]

    def provider(urn):
        return analyzer_pb2.AnalyzerProviderResource(type="pulumi:providers:kubernetes", urn=urn,
                                                      name=urn.rsplit("::", 1)[-1], properties=struct({}))

    found = []
    for r in fixture.resources:
        response = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(
            type=r["type"], name=r["name"], urn=r["urn"], properties=struct(r["inputs"]), provider=provider(r["provider"])))
        found += [(d.policyName, r["name"], message(d)) for d in response.diagnostics]
    resources = [analyzer_pb2.AnalyzerResource(type=r["type"], urn=r["urn"], name=r["name"],
                                               properties=struct(r["inputs"]), provider=provider(r["provider"]))
                 for r in fixture.resources]
    stack = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources))
    found += [(d.policyName, names.get(d.urn, ""), message(d)) for d in stack.diagnostics]
    return sorted(found)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.name)
def test_the_analyzer_protocol_reports_the_same(analyzer, fixture):  # noqa: F811
    assert analyze_over_grpc(analyzer, fixture) == findings(fixture)


def test_the_corpus_counts():
    """What the closing note reports: findings per kind, precision (findings that are expected) and recall (real
    weaknesses found, against those no rule catches) over the corpus."""
    kinds = [e.kind for f in FIXTURES for e in f.findings]
    assert len(kinds) >= 80 and kinds.count("opinion") <= len(kinds) // 10
    assert sum(len(f.silent) for f in FIXTURES) >= 30
    found = sum(len(findings(f)) for f in FIXTURES)
    expected = sum(len(f.findings) - len(matched(findings(f), f)[1]) for f in FIXTURES)
    true = kinds.count("true")
    missed = sum(len(f.missed) for f in FIXTURES)
    print(f"{len(FIXTURES)} fixtures: {found} findings, precision {expected / found:.3f}; {true} real weaknesses "
          f"found, {missed} missed, recall {true / (true + missed):.3f}")
    assert expected == found
