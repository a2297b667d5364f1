-- The portal's search finds a substring of a user's names or email. A trigram index answers
-- it without reading every user of the organization. Its rows are keyed by an integer of
-- their own (`user_search_keys`), since VACUUM may renumber scim_users' implicit rowids.
CREATE TABLE user_search_keys (
    key INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL UNIQUE REFERENCES scim_users (id) ON DELETE CASCADE
);
CREATE VIRTUAL TABLE user_search USING fts5(
    user_name, display_name, full_name, email,
    content = '', contentless_delete = 1, tokenize = 'trigram'
);
INSERT INTO user_search_keys (user_id) SELECT id FROM scim_users;
INSERT INTO user_search (rowid, user_name, display_name, full_name, email)
    SELECT k.key, u.user_name_norm, u.display_name_norm, u.full_name_norm, u.primary_email
    FROM user_search_keys k JOIN scim_users u ON u.id = k.user_id;

CREATE TRIGGER user_search_insert AFTER INSERT ON scim_users BEGIN
    INSERT INTO user_search_keys (user_id) VALUES (NEW.id);
    INSERT INTO user_search (rowid, user_name, display_name, full_name, email)
        VALUES ((SELECT key FROM user_search_keys WHERE user_id = NEW.id),
                NEW.user_name_norm, NEW.display_name_norm, NEW.full_name_norm, NEW.primary_email);
END;
CREATE TRIGGER user_search_update
AFTER UPDATE OF user_name_norm, display_name_norm, full_name_norm, primary_email ON scim_users
BEGIN
    DELETE FROM user_search WHERE rowid = (SELECT key FROM user_search_keys WHERE user_id = NEW.id);
    INSERT INTO user_search (rowid, user_name, display_name, full_name, email)
        VALUES ((SELECT key FROM user_search_keys WHERE user_id = NEW.id),
                NEW.user_name_norm, NEW.display_name_norm, NEW.full_name_norm, NEW.primary_email);
END;
CREATE TRIGGER user_search_delete BEFORE DELETE ON scim_users BEGIN
    DELETE FROM user_search WHERE rowid = (SELECT key FROM user_search_keys WHERE user_id = OLD.id);
END;
