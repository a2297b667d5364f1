ALTER TABLE group_members
    ADD CONSTRAINT group_members_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES scim_users (id) ON DELETE CASCADE;
