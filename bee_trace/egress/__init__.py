"""Egress: the domain policy the kernel enforces (policy.py), destinations named from DNS answers
the kernel learned (names.py), and allowlists learned from an audit run (learn.py)."""
