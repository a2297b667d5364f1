-- Alerts about a directory's provisioning (see `alerts`): raised when the evaluation finds a
-- condition (kind: quiet, rejected_tokens, old_token, errors) and cleared when it ends. At
-- most one open alert per directory and kind: the partial unique index makes a second raise
-- by another instance a no-op.
CREATE TABLE directory_alerts (
    id TEXT PRIMARY KEY NOT NULL,
    directory_id TEXT NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    -- The sentence shown and sent: what happened and what to do.
    detail TEXT NOT NULL,
    raised_at TIMESTAMP NOT NULL,
    cleared_at TIMESTAMP
);
CREATE UNIQUE INDEX directory_alerts_open ON directory_alerts (directory_id, kind)
    WHERE cleared_at IS NULL;
CREATE INDEX directory_alerts_by_directory ON directory_alerts (directory_id, raised_at);
