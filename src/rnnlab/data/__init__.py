"""Data: sources, readers, splits, tokenization, batching and DataModules."""
