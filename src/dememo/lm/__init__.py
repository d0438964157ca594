"""Causal language models for the LM case study: loading, batches, fine-tuning,
unlearning (RT, FT, GA, NPO) and the recovery attack."""
