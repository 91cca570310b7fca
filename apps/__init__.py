"""lmuformer_apps: consumers of the ``lmuformer-export`` artifacts.

- :mod:`lmuformer_apps.kws_stream`: laptop streaming keyword spotter (LiteRT), the
  ``lmuformer-stream`` CLI;
- ``apps/mcu/``: C99 frontend, smoothing and a TensorFlow Lite Micro main loop;
- ``apps/android/``: Android app skeleton and the plain-Java ``kws-core`` module.

Every app reads the exported ``metadata.json`` (see ``docs/ARCHITECTURE.md``, "Export
metadata contract"); nothing about the model is retyped.
"""
