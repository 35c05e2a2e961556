"""Real multi-process runs through accelerate (gloo on CPU): DDP, ZeRO-2/3 and two-node launches."""
