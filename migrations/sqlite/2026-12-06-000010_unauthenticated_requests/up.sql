-- Requests refused for their credentials (401) are kept apart from the rest of the request
-- log, and bounded on their own: a flood of them must never push authenticated history out.
-- This index finds a directory's newest ones; only 401 rows enter it.
CREATE INDEX scim_requests_unauthenticated ON scim_requests (directory_id, id) WHERE status = 401;
