"""The policy pack: only builds the PolicyPack (its constructor serves gRPC and never returns)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from thanos_policies import POLICIES  # noqa: E402

PolicyPack(name="thanos-guard", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
