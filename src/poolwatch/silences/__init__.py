"""Muting: maintenance windows from the config, silences from the command line (a store in
state_dir), and what the daemon does with both (docs/muting.md)."""
