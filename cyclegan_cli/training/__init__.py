"""Training: the CycleGAN step, its loop, checkpoints, history pools and LR schedules."""
