"""The Windows side: the MT5 connector, encrypted local config, client security."""
