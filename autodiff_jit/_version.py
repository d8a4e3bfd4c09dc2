"""The package version. It imports nothing, so the disk cache key and
`autodiff-jit --version` read it without importing the package."""
__version__ = "0.1.0"
