"""The LLM backbone: loading, and (later) fine-tuning on alignment tasks."""
