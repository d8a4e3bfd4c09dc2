"""The package version (imports nothing: the disk cache key and `autodiff-jit --version` read it)."""
__version__ = "0.1.0"
