"""Model stage: the collaborative baselines the LLM recommender is measured against."""
