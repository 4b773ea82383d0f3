"""`rnnkit caption`: one-to-many: an image of a digit sets the decoder's first state through a
bridge, and the decoder writes a caption ("a bold handwritten seven"), greedily or by beam search.
Stands on conditioned.ConditionedDecoder, decoding, layers.Linear, data.digits, train.Trainer.
In Python: `ImageCaptioner(...).fit(images, captions).describe(images, beam=)` (`api.py`)."""

from .api import ImageCaptioner

__all__ = ["ImageCaptioner"]
