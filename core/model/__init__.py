"""The networks, their fast CPU kernels, checkpoints, calibration and the device they run on."""
