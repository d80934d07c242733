"""Alignment tokenization: every item becomes a short sequence of code tokens.

features (CF / text vectors) -> quantizers (RQ-KMeans or RQ-VAE) -> collisions
(make item -> codes a bijection) -> alignment (code tokens' initial LLM
embeddings) -> artifacts (files, report, plot) -> inspect.
"""
