-- A resync of a directory: while it runs, every user and group the provider names is
-- confirmed; finishing lists those that existed at its start and were never confirmed
-- (`stale_users`, `stale_groups`: JSON arrays of ids), which the IT admin then deactivates
-- (users) and deletes (groups), or keeps. At most one runs per directory (the partial unique
-- index), so two instances starting one at once cannot both succeed.
CREATE TABLE directory_resyncs (
    id TEXT PRIMARY KEY NOT NULL,
    directory_id TEXT NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    -- running, finished, applying, applied or cancelled (the directory was disabled).
    state TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    -- Finished by the background loop at this time if nobody finished it before.
    finish_by TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    confirmed BIGINT NOT NULL DEFAULT 0,
    stale_users TEXT,
    stale_groups TEXT,
    -- deactivate or keep, once chosen.
    action TEXT,
    applied_at TIMESTAMP,
    -- While applying: another instance resumes the deactivation after this time.
    claimed_until TIMESTAMP
);
CREATE UNIQUE INDEX directory_resyncs_one_running ON directory_resyncs (directory_id)
    WHERE state = 'running';
CREATE INDEX directory_resyncs_by_directory ON directory_resyncs (directory_id, started_at);
CREATE INDEX directory_resyncs_by_state ON directory_resyncs (state);

-- The users and groups a running resync saw the provider name (by id).
CREATE TABLE resync_confirmations (
    resync_id TEXT NOT NULL REFERENCES directory_resyncs (id) ON DELETE CASCADE,
    resource_id TEXT NOT NULL,
    PRIMARY KEY (resync_id, resource_id)
);
