"""One module per ``liftlab`` subcommand; each exposes ``command``."""
