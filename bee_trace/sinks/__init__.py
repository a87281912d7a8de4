"""Output sinks: each takes one event dict at a time; flush() at the end of a drained batch."""
