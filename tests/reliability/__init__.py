"""Reliability and security suite: faults, crashes, load, bad input, leaks (issue 9)."""
