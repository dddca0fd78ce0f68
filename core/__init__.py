"""digits core: data, features, models, training, evaluation and prediction, free of any UI."""
