"""Layer 1, foundations: paths, sha256 integrity, hub reachability, the registries of
names and the typed stage configs. Nothing here imports from a higher layer."""
