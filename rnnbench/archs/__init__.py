"""Recurrent architectures benchmarked by rnnbench."""
