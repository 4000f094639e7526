"""The Projector's computations: projections (PCA, t-SNE, UMAP) and nearest neighbours of embeddings.

They run in worker processes with their own memory bound (worker.py), started and killed by the
server's job manager (jobs.py); compute.py is the pure numeric part, requests.py the validated
requests, their cache keys and time estimates.
"""
