"""How steps run. Today every step runs in-process and streams through ManifestWriter itself
(the local engine); a Ray Data engine that maps the same step code is not written yet."""
