"""Cycle-exact benchmarks: each prints a table and writes JSON (``amnic bench NAME``)."""
