"""poolwatch: a resource-monitor daemon for a PostgreSQL, Redis and Docker stack.

Data flow: sources → Reading → evaluation → Event → sinks; the runner schedules and shuts down.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("poolwatch")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
