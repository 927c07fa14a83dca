"""Analyses of runs: instability (linear mode connectivity), and later supermasks and ticket comparison."""
