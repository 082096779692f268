"""Library adapters: one module per instrumented library (see base.py)."""
