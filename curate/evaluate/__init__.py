"""Fixed evaluation protocols: random at equal budget, mean ± std over seeded runs."""
