"""Shared by the channel modules: the sample rate and the lazy SciPy import."""

SAMPLE_RATE = 16000


def _signal():
    """``scipy.signal``, imported on first use (keeps script workers light)."""
    import scipy.signal

    return scipy.signal
