"""`--once` output for monitoring systems that run poolwatch as a plugin: Nagios-compatible
plugin output (Icinga 2, Nagios, NRPE) and Checkmk local-check lines, over shared perfdata."""
