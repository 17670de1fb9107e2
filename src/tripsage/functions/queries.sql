-- name: claim_webhook_id
-- Record a webhook-id as processed, in the work's transaction; no row back: it was processed (or is being).
INSERT INTO functions.processed_webhooks (function_name, webhook_id, event_type)
VALUES (%(function)s, %(webhook_id)s, %(event_type)s)
ON CONFLICT (function_name, webhook_id) DO NOTHING
RETURNING webhook_id;

-- name: set_webhook_response
-- The response given for a processed webhook-id (answered again to a redelivery).
UPDATE functions.processed_webhooks SET response = %(response)s
WHERE function_name = %(function)s AND webhook_id = %(webhook_id)s;

-- name: processed_response
-- The stored response of an already processed webhook-id.
SELECT response FROM functions.processed_webhooks WHERE function_name = %(function)s AND webhook_id = %(webhook_id)s;

-- name: trip
-- A trip's name, destination, dates and owner.
SELECT id, user_id, name, destination, start_date, end_date FROM public.trips WHERE id = %(trip_id)s;

-- name: user_contacts
-- Email addresses and display names of users.
SELECT user_id, email, display_name FROM functions.user_contacts(%(user_ids)s::uuid[]);

-- name: insert_notification
-- A notification; a repeated dedupe key inserts nothing.
INSERT INTO public.notifications (user_id, type, title, message, metadata, dedupe_key)
VALUES (%(user_id)s, %(type)s, %(title)s, %(message)s, %(metadata)s, %(dedupe_key)s)
ON CONFLICT (user_id, type, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
RETURNING id;

-- name: queue_email
-- An email for the outbox, sent after commit; a repeated dedupe key queues nothing.
INSERT INTO functions.email_outbox (dedupe_key, recipient, subject, body_text, body_html)
VALUES (%(dedupe_key)s, %(recipient)s, %(subject)s, %(body_text)s, %(body_html)s)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id;

-- name: claim_emails
-- Due emails, leased to this sender (a crashed sender's lease expires and another replica takes them).
WITH due AS (
    SELECT id FROM functions.email_outbox
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE functions.email_outbox o
SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => %(lease_s)s)
FROM due WHERE o.id = due.id
RETURNING o.id, o.recipient, o.subject, o.body_text, o.body_html, o.attempts, o.dedupe_key;

-- name: email_sent
-- An email the SMTP server accepted.
UPDATE functions.email_outbox SET status = 'sent', sent_at = now(), last_error = NULL WHERE id = %(id)s;

-- name: email_failed
-- An attempt that failed: retried after the delay, or dead after the last attempt.
UPDATE functions.email_outbox
SET status = CASE WHEN attempts >= %(max_attempts)s THEN 'dead' ELSE 'pending' END,
    next_attempt_at = now() + make_interval(secs => %(delay_s)s),
    last_error = %(error)s
WHERE id = %(id)s
RETURNING status;

-- name: email_outbox_status
-- Emails by status (tests, health).
SELECT status, count(*) AS emails FROM functions.email_outbox GROUP BY status;

-- name: pending_memories
-- The next batch of memories without an embedding (optionally only the given ids, or one user's).
SELECT id, content FROM public.memories
WHERE embedding IS NULL
  AND id > %(after)s
  AND (%(ids)s::bigint[] IS NULL OR id = ANY (%(ids)s::bigint[]))
  AND (%(user_id)s::uuid IS NULL OR user_id = %(user_id)s::uuid)
ORDER BY id
LIMIT %(limit)s;

-- name: store_embeddings
-- Vectors of one batch, sent as one flat float array (binary: no text formatting or parsing of the floats), row n's
-- vector being elements (n-1)*dim+1 .. n*dim. A memory embedded meanwhile, or whose content changed since it was
-- read, is left alone.
UPDATE public.memories m
SET embedding = ((%(embeddings)b::float4[])[(v.n - 1) * %(dim)s + 1 : v.n * %(dim)s])::extensions.vector,
    embedding_model = %(model)s,
    embedded_at = now()
FROM unnest(%(ids)s::bigint[], %(contents)s::text[]) WITH ORDINALITY AS v (id, content, n)
WHERE m.id = v.id AND m.embedding IS NULL AND m.content = v.content;

-- name: chat_session
-- The owner of a chat session.
SELECT id, user_id, trip_id FROM public.chat_sessions WHERE id = %(session_id)s;

-- name: lock_user_memories
-- Serialize preference updates of one user (two messages must not create the same memory twice).
SELECT pg_advisory_xact_lock(hashtextextended('tripsage.memories:' || %(user_id)s::text, 0));

-- name: insert_session_memory
-- What one chat message revealed, with the message's embedding.
INSERT INTO public.session_memories (session_id, user_id, content, embedding, metadata)
VALUES (%(session_id)s, %(user_id)s, %(content)s, %(embedding)s::extensions.vector, %(metadata)s)
RETURNING id;

-- name: find_preference
-- The long-term memory holding one preference (category and value) of a user.
SELECT id, confidence FROM public.memories
WHERE user_id = %(user_id)s AND memory_type = 'user_preference'
  AND metadata ->> 'category' = %(category)s AND metadata ->> 'value' = %(value)s
ORDER BY id
LIMIT 1
FOR UPDATE;

-- name: reinforce_preference
-- Seen again: confidence moves toward 1 by the evidence's weight.
UPDATE public.memories
SET confidence = least(1.0, confidence + (1.0 - confidence) * %(weight)s),
    last_reinforced = now(),
    metadata = metadata || jsonb_build_object('reinforcements', coalesce((metadata ->> 'reinforcements')::int, 0) + 1,
                                              'last_session_id', %(session_id)s::text)
WHERE id = %(id)s
RETURNING confidence;

-- name: create_preference
-- A preference seen for the first time (the memories trigger queues its embedding).
INSERT INTO public.memories (user_id, memory_type, content, confidence, last_reinforced, metadata)
VALUES (%(user_id)s, 'user_preference', %(content)s, %(confidence)s, now(), %(metadata)s)
RETURNING id, confidence;

-- name: search_memories
-- Semantic search over one user's memories (public.search_memories, HNSW).
SELECT id, content, memory_type, metadata, confidence, similarity, created_at
FROM public.search_memories(%(embedding)s::extensions.vector, %(user_id)s, %(match_count)s, %(filters)s);

-- name: prune_processed_webhooks
-- Idempotency records older than the retention (a redelivery comes within the dispatcher's ~28 h schedule).
DELETE FROM functions.processed_webhooks
WHERE (function_name, webhook_id) IN (
    SELECT function_name, webhook_id FROM functions.processed_webhooks
    WHERE processed_at < now() - make_interval(secs => %(older_than_s)s)
    LIMIT %(limit)s
);

-- name: prune_sent_emails
-- Sent emails older than the retention (their dedupe keys are no longer needed).
DELETE FROM functions.email_outbox
WHERE id IN (
    SELECT id FROM functions.email_outbox
    WHERE status = 'sent' AND sent_at < now() - make_interval(secs => %(older_than_s)s)
    LIMIT %(limit)s
);
