"""MT5 connector: reads ticks from a MetaTrader 5 terminal (or the simulator) and sends them
to data-bridge over the v1 protocol (docs/protocol.md)."""
