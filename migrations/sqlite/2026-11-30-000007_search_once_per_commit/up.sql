-- The trigram index is written once per commit instead of once per change. FTS5 flushes its
-- pending terms into a new segment (and merges segments) at every savepoint, and the writer
-- runs each SCIM change in a savepoint of a shared transaction: a third of a create's cost.
-- The triggers now only note which users changed; `users::index_pending_search` indexes them
-- just before the transaction commits, so no reader ever sees a pending row.
CREATE TABLE user_search_pending (
    key INTEGER PRIMARY KEY REFERENCES user_search_keys (key) ON DELETE CASCADE,
    -- 1 when the index holds an older version of this user (to be deleted first).
    indexed INTEGER NOT NULL
);

DROP TRIGGER user_search_insert;
DROP TRIGGER user_search_update;
DROP TRIGGER user_search_delete;

CREATE TRIGGER user_search_insert AFTER INSERT ON scim_users BEGIN
    INSERT INTO user_search_keys (user_id) VALUES (NEW.id);
    INSERT INTO user_search_pending (key, indexed)
        VALUES ((SELECT key FROM user_search_keys WHERE user_id = NEW.id), 0);
END;
CREATE TRIGGER user_search_update
AFTER UPDATE OF user_name_norm, display_name_norm, full_name_norm, primary_email ON scim_users
BEGIN
    -- Already pending (created or changed earlier in this transaction): nothing more to note.
    INSERT OR IGNORE INTO user_search_pending (key, indexed)
        VALUES ((SELECT key FROM user_search_keys WHERE user_id = NEW.id), 1);
END;
CREATE TRIGGER user_search_delete BEFORE DELETE ON scim_users BEGIN
    -- Only a version that reached the index is deleted from it.
    DELETE FROM user_search WHERE rowid = (
        SELECT k.key FROM user_search_keys k WHERE k.user_id = OLD.id AND NOT EXISTS (
            SELECT 1 FROM user_search_pending p WHERE p.key = k.key AND p.indexed = 0));
    DELETE FROM user_search_pending
        WHERE key = (SELECT key FROM user_search_keys WHERE user_id = OLD.id);
END;
