"""What every stage shares: errors and exit statuses, processes, a run's lifecycle (its
directory, SIGTERM), documents and their schemas, the terminal, preflight checks, `lab clean`."""
