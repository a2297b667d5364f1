DROP TRIGGER user_search_delete;
DROP TRIGGER user_search_update;
DROP TRIGGER user_search_insert;
DROP TABLE user_search_pending;
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
