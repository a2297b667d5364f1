CREATE TRIGGER user_search_insert AFTER INSERT ON scim_users BEGIN
    INSERT INTO user_search_keys (user_id) VALUES (NEW.id);
    INSERT INTO user_search_pending (key, indexed)
        VALUES ((SELECT key FROM user_search_keys WHERE user_id = NEW.id), 0);
END;
