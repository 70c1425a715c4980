"""The Thanos policy pack: `POLICIES` is what it serves.

A policy is named `thanos-<prefix>-<rule>`, and its prefix, the word after `thanos-`, names its domain and its module:
every `thanos-exposure-*` policy (`thanos-exposure-admin-api-off`) is in `exposure.py`, so a finding's name tells its
file. A domain module holds its validators and its own helpers, and registers its rules in its `POLICIES` with
`resource_policy` or `stack_policy` (`_register.py`: each finding reported once, values computed at apply judged).
Modules whose names start with `_` are no prefix; they hold what several domains read, and register nothing:
- `_workloads.py`: reading Kubernetes workloads and Thanos containers (`Stack`, `flag`, `parsed`, ...);
- `_addresses.py`, `_labels.py`, `_rules.py`, `_quantities.py`: in-cluster addresses, producers' replica and external
  labels, mounted rule files, sizes;
- `_register.py` and `_unknowns.py`: how a rule joins the pack.
Domain modules import only these, never each other. tests/test_policies.py checks the layout; each domain's tests are
in tests/policies/test_<prefix>.py.
"""

from . import (alerting, batch, compactor, exposure, flags, ha, hardening, identity, limits, preview, producers, query,
               retention, storage, store, tenancy, wiring)

DOMAINS = (ha, compactor, producers, store, retention, batch, flags, storage, identity, hardening, preview, wiring,
           exposure, query, alerting, limits, tenancy)
"""The domain modules, in the order the pack serves their policies."""

POLICIES = [policy for domain in DOMAINS for policy in domain.POLICIES]
