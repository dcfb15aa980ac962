"""One module per ``mobile-vla`` subcommand; each exposes ``register(subparsers)``."""
