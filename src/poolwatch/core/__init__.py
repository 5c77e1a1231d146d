"""The pure core: values (Reading, Event), evaluation, sentences, backoff, reasons, masking.

Nothing here does I/O.
"""
