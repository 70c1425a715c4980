"""The Thanos policy pack's rules, one module per domain."""

POLICIES: list = []
