"""authorbot's flows and command line."""

import logging

# Progress lines (books, counts, epochs) are INFO: shown by the CLI and, through
# PREFECT_LOGGING_EXTRA_LOGGERS, in the Prefect UI, also for runs a worker starts.
logging.getLogger(__name__).setLevel(logging.INFO)
