DROP INDEX scim_users_external_id;
DROP INDEX scim_users_display_name;
DROP INDEX scim_users_updated;
CREATE INDEX scim_users_external_id ON scim_users (directory_id, external_id);
CREATE INDEX scim_users_display_name ON scim_users (directory_id, display_name_norm);
CREATE INDEX scim_users_updated ON scim_users (directory_id, updated_at);
DROP INDEX scim_users_view_name;
DROP INDEX scim_groups_live;
DROP INDEX scim_users_live;
