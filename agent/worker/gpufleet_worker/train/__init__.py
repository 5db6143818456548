"""The training rank: a torch.distributed step loop that times every collective and checkpoints (issue 14)."""
