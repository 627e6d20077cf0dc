"""The run's input: a scenario (conditions, servers, peers, call, expectations) on a
topology (nodes and links), loaded from YAML and validated against the JSON Schemas."""
