"""What a user's training loop imports: reference networks, augmentations, datasets, losses."""
