"""Fine-tuning the index's embedder and a cross-encoder reranker on its own corpus.

Training pairs are made from the corpus alone (headings, defined names, docstrings, first
sentences), never from evaluation queries, so a tuned index can still be evaluated fairly."""
