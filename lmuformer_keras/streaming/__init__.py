"""Streaming: the causal LMUFormer one frame at a time, with explicit states."""

from lmuformer_keras.models.blocks import StateSpec
from lmuformer_keras.streaming.streaming_model import (
    StreamingModel,
    StreamingStep,
    frame_logits,
)

__all__ = ["StateSpec", "StreamingModel", "StreamingStep", "frame_logits"]
