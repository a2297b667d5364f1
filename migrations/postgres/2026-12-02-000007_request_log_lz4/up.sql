-- Most request-log rows are past Postgres's TOAST threshold (a response excerpt is up to
-- 2 KB, a request body up to 16 KB), so every insert compresses them: lz4 does it in about
-- three quarters of pglz's time, and inserting log rows is the largest share of a busy
-- directory's database time. A server built without lz4 keeps pglz (dynamic SQL, so the
-- statement is only parsed, and its failure caught, when it runs).
DO $$
BEGIN
    EXECUTE 'ALTER TABLE scim_requests
        ALTER COLUMN request_body SET COMPRESSION lz4,
        ALTER COLUMN response_excerpt SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'request log compression stays the default: %', SQLERRM;
END
$$;
