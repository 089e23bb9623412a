"""The ``dmpo`` command line."""
