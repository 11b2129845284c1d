"""news-monitor: poll news feeds, match watch rules, deliver digests and alerts.

The data flows one way::

    fetch -> parse -> match -> store -> digest -> channels

``monitor.pipeline`` is the only module that calls the stages in order;
``monitor.daemon`` and ``monitor.cli`` build the objects and hand them to it.
Importing this package imports nothing else: commands stay fast to start.
"""

__version__ = "0.1.0"
