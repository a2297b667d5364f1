DROP INDEX scim_users_view_name;
DROP INDEX scim_groups_live;
DROP INDEX scim_users_live;
