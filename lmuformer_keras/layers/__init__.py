"""Keras layers: the math of LMUFormer (keras.ops only)."""
