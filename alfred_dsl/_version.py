"""The version of alfred, one place for the package, the CLI, SARIF and the language server."""

__version__ = "0.1.0"
