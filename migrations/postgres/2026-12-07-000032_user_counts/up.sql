-- Each directory's number of live users as of its event sequence, once a view counted them. A
-- user is only created, deleted or restored together with an event, which raises the sequence,
-- so a row whose sequence is still the directory's still holds. Kept here, the owner's
-- organization list does not count every directory's users again after a restart.
CREATE TABLE directory_user_counts (
    directory_id TEXT PRIMARY KEY NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    event_seq BIGINT NOT NULL,
    live_users BIGINT NOT NULL
);
