"""pandera schemas checked at every Parquet boundary: datasets, metrics and learning curves."""
