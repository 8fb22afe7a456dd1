"""The shared library every aitrading service imports.

Nothing here does work at import time: no connections, no singletons, no threads.
"""
