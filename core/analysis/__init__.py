"""What the encoders learned: embeddings, their projections (t-SNE, UMAP, PCA) and clusters."""
