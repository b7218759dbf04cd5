"""authorbot's flows and command line."""
