-- The id Roster sent back as `X-Request-Id`: the request inspector shows it so that an IT
-- admin can quote it to support, who find the request's log line by it. NULL for older rows.
ALTER TABLE scim_requests ADD COLUMN request_id TEXT;
