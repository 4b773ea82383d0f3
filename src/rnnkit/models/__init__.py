"""Task models: a network, a head and the task's own inference loop."""

from .language import LanguageModel

__all__ = ["LanguageModel"]
