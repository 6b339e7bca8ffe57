"""Ray Tune experiments of searches: ``sweep`` (Optuna's TPE + ASHA), ``compare`` (paired seeds, a
grid) and ``power``; their trial, the Tuner, the sweep space and the statistics."""
