"""Recovery tools a person runs from a runbook (docs/runbooks.md)."""
