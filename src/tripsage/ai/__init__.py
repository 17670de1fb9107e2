"""TripSage's AI helpers: embedding providers (local sentence-transformers, or an OpenAI-compatible API) and the
rule-based travel preference extraction."""
