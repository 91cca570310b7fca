"""``python -m lmuformer_apps.kws_stream``: the ``lmuformer-stream`` CLI."""

from .cli import main

main()
