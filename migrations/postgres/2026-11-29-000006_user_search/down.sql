DROP INDEX scim_users_search;
