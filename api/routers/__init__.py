"""The HTTP resources: thin, they parse, call the Ledger or a projection query, and answer."""
