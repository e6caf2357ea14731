"""A1111's prompt language: emphasis, BREAK, prompt editing, alternation, AND, long prompts and
textual-inversion embeddings, turned into the conditioning the diffusion engine consumes."""

from modules.prompting.chunks import count_tokens, token_limit

__all__ = ["count_tokens", "token_limit"]
