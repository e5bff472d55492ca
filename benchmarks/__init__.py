"""Benchmarks: anchor_orm side by side with its peers and the floor (python3 dev.py bench)."""
