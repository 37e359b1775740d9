"""A quick estimate of how many tokens a text costs a Llama 3 model.

Llama 3's tokenizer (tiktoken-style BPE, 128k vocabulary) spends about one token per four
characters of English and JSON, and about one token per character of Chinese. We count exactly
that: ASCII characters / 4, plus one per non-ASCII character. It is an estimate for comparing tool
schemas, not a tokenizer; the server's ``/tokenize`` endpoint gives the exact number.
"""

from __future__ import annotations

import math

__all__ = ["estimate_tokens"]


def estimate_tokens(text: str) -> int:
    """Approximate Llama 3 token count of ``text`` (see the module docstring for the rule)."""
    ascii_chars = sum(1 for ch in text if ch.isascii())
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)
