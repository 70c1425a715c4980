"""Offline preflight: the real program under Pulumi's mock engine, the real policy pack over it."""
