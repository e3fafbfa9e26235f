"""The curation steps: embed, cluster, prune, label_issues; each reads and writes a manifest."""
