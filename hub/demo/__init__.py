"""The demo ecosystem: a deterministic, synthetic population of consumers, cars and contracts."""
