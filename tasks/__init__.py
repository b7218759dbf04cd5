"""authorbot's steps: plain functions, each module ending with its Prefect task wrappers."""
