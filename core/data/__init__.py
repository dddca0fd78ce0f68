"""Datasets: MNIST, FSDD, the course's arrays, their download and their pairing by label."""
