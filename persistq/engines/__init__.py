"""Storage engines: bytes in, bytes out, transactions and durability."""
