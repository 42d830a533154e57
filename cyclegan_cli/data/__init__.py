"""Data: robust image reading, preprocessing, the unaligned dataset and the sample dataset."""
