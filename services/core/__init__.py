"""The recommendation core, shared by the api and the trainer (as Gorse's ``logics``).

Pure logic over plain arrays: the item bandit (``bandit``), live co-likes (``colikes``),
feedback types (``feedback``), scoring with a trained model (``scoring``), the ranking rules
(``ranking``) and the ranking metrics (``ranking_metrics``). Built on them, the serving
pieces both processes run: the in-memory serving state, the Recommender, the prefetcher and
their one Redis adapter (``serving_store``).
"""
