-- Pages of live users and groups in id order (SCIM's default listing) and their counts walk
-- these instead of sorting or visiting every row of the directory.
CREATE INDEX scim_users_live ON scim_users (directory_id, id) WHERE deleted_at IS NULL;
CREATE INDEX scim_groups_live ON scim_groups (directory_id, id) WHERE deleted_at IS NULL;
-- The portal's Users view sorts by the name it shows.
CREATE INDEX scim_users_view_name ON scim_users
    (directory_id, COALESCE(display_name_norm, full_name_norm, user_name_norm), id)
    WHERE deleted_at IS NULL;
-- Every listing skips deleted users, so the other lookup indexes only hold live ones too:
-- whichever the planner picks to count a directory, it never has to visit the rows.
DROP INDEX scim_users_external_id;
DROP INDEX scim_users_display_name;
DROP INDEX scim_users_updated;
CREATE INDEX scim_users_external_id ON scim_users (directory_id, external_id) WHERE deleted_at IS NULL;
CREATE INDEX scim_users_display_name ON scim_users (directory_id, display_name_norm) WHERE deleted_at IS NULL;
CREATE INDEX scim_users_updated ON scim_users (directory_id, updated_at) WHERE deleted_at IS NULL;
