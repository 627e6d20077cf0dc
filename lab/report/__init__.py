"""What the lab tells the user: the typed result and its JSON, the terminal summary,
expectations, `lab explain`, HTML reports, the KVS SDK's words, and `lab diagnose`."""
