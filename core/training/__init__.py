"""Training and evaluation as library functions: run data, the loop, metrics, and leave-one-speaker-out."""
