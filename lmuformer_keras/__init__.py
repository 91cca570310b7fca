"""LMUFormer for Keras 3: LMU layers, spiking neurons, models, streaming and export."""

__version__ = "0.1.0"
