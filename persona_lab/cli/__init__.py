"""The ``persona-lab`` command line."""
