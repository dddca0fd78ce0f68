"""Datasets: MNIST and FSDD, their download, their state on disk and their pairing by label."""
