"""memdiag: find where a Linux host's memory went.

Data flows one way: sources -> facts -> rules -> findings -> sinks.
"""

__version__ = "0.1.0"
