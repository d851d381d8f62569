"""Validate an uploaded image by its content and re-encode it without metadata."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIDE = 2048
ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF"})


class ImageRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CleanImage:
    data: bytes
    content_type: str
    width: int
    height: int


def clean_image(data: bytes) -> CleanImage:
    """Decode (refusing bombs and non-images), downscale, re-encode as PNG or JPEG.

    Re-encoding from decoded pixels drops EXIF, ICC, comments and anything smuggled after
    the image data (HTML/SVG polyglots), and gives the file a type we chose.
    """
    if not data:
        raise ImageRejected("bad_request", "The file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageRejected("too_large", "Images are at most 10 MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in ACCEPTED_FORMATS:
                    raise ImageRejected("unsupported_media", "Send a PNG, JPEG, WebP or GIF image.")
                width, height = probe.size
                if width < 1 or height < 1 or width * height > MAX_PIXELS:
                    raise ImageRejected("too_large", "The image has too many pixels.")
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.seek(0)  # first frame of an animation
                image.load()
                has_alpha = image.mode in ("RGBA", "LA", "PA") or (
                    image.mode == "P" and "transparency" in image.info
                )
                converted = image.convert("RGBA" if has_alpha else "RGB")
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("too_large", "The image has too many pixels.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageRejected("unsupported_media", "This file is not a readable image.") from None
    converted.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    if has_alpha:
        converted.save(out, format="PNG", optimize=True)
        content_type = "image/png"
    else:
        converted.save(out, format="JPEG", quality=85)
        content_type = "image/jpeg"
    return CleanImage(out.getvalue(), content_type, converted.width, converted.height)
