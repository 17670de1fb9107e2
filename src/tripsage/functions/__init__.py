"""The runtime's functions, called as Supabase Edge Functions are: /functions/v1/trip-events and
/functions/v1/ai-processing (see docs/functions.md)."""
