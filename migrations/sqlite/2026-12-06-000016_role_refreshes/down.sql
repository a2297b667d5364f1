DROP TABLE role_refreshes;
