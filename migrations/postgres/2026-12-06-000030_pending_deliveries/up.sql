-- The heads of line of the webhook deliveries still to make, per endpoint and directory: a
-- claim skips from one directory's oldest pending delivery to the next's in this index, so it
-- costs the directories waiting, not the deliveries waiting.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, directory_id, event_seq)
    WHERE status = 'pending';
