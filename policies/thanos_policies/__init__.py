"""The Thanos policy pack's rules, one module per domain; `POLICIES` is what the pack serves."""

from . import alerting, answers, exposure, ha, platform, thanos, wiring
from .preview import judge_unknowns

POLICIES = [judge_unknowns(p) for p in (*ha.POLICIES, *thanos.POLICIES, *platform.POLICIES, *wiring.POLICIES,
                                        *exposure.POLICIES, *alerting.POLICIES, *answers.POLICIES)]
