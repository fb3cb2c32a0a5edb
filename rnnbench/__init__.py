"""rnnbench: pure library code (problems, datasets, architectures, training, report) behind the flows."""
