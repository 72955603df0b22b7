"""Data module: labels, charset, tokenizers, dataset formats, synthetic plates, augmentation."""
