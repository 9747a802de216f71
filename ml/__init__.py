"""Pure-Python machine learning for Segmenta: features, training, evaluation, registry. No Dagster."""
