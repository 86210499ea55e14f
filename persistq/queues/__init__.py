"""Queue kinds: ordering, waiting, maxsize and task accounting, composed with an engine."""
