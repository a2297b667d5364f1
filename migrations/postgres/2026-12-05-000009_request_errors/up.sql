-- The directory page's "last error" and the request inspector's errors-only filter: the
-- newest failed requests of a directory. Without this index, finding the last error walked
-- the directory's whole request log (up to 10 000 rows) back to front when none had failed.
-- Errors are few, so the index is small, and a request that succeeds never enters it.
CREATE INDEX scim_requests_errors ON scim_requests (directory_id, id) WHERE status >= 400;
