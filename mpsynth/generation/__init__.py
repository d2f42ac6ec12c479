"""Generation: the live engine (asyncio, one per Ray actor), the provider batch mode, the shared rate
governor, the ledger every answer lands in, and pricing. Nothing here imports Ray; the actors that run
it live in mpsynth.distributed."""
