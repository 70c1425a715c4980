"""Helpers the tests share (imported by test modules; pytest's fixtures stay in conftest.py)."""
