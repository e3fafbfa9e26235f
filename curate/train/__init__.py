"""What a user's training loop imports: soft-target losses, label-pooling and replay datasets,
and the small reference networks. Nothing here imports curate.pipelines."""
