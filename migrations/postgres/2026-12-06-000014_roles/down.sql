DROP TABLE user_roles;
DROP TABLE role_mappings;
DROP TABLE roles;
