"""The python agents tests/data/check/feature.* call: present, so `check` finds the module."""
