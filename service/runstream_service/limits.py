"""Limits on what one batch may hold. Documented in the README; enforced by validate.py."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 64 << 20
    max_tags_per_batch: int = 10_000
    max_tag_bytes: int = 256
    max_id_chars: int = 128  # run_id and writer_id
    max_buckets: int = 10_000  # per histogram
    max_image_bytes: int = 16 << 20  # encoded, per image
    max_image_pixels: int = 8192 * 8192
    max_images_per_batch: int = 1_000
    max_text_bytes: int = 1 << 20  # UTF-8, per text
    max_texts_per_batch: int = 10_000


DEFAULT_LIMITS = Limits()
