"""The read side: projections of the ledger's events into plain SQL tables."""
