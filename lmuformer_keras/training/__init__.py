"""Training: the ``lmuformer-train`` command and its parts.

- :mod:`.datasets`: dataset names, natural presets, model arguments from the data;
- :mod:`.recipes`: optimizer / schedule / loss / augmentation (``default``,
  ``paper_scv2``);
- :mod:`.pipeline`: seeded, augmented training batches (``keras.utils.PyDataset``);
- :mod:`.trainer`: model building, ``fit``, best checkpoint, resume;
- :mod:`.distribute`: ``--distribute=data_parallel`` (JAX);
- :mod:`.evaluate`: test metrics, ``calibration.npz`` / ``test.npz``;
- :mod:`.streaming_eval`: accuracy versus frames seen, with ``StreamingModel``;
- :mod:`.plots`: ``curves.png``, ``streaming_accuracy.png``;
- :mod:`.cli`: ``lmuformer-train``.
"""
