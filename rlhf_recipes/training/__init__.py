"""What every training stage shares: TRL arguments set explicitly, the training loop around a TRL trainer
(progress, a stop at NaN, the held-out curve, resume, logs), and saving the trained policy."""
