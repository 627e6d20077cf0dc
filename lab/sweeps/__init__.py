"""Many runs: `lab matrix` (cells, workers that reuse a network, shards) and `lab compare`."""
