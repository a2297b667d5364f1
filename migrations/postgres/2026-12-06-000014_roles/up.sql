-- Roles the app owner defines per organization, which directory groups give them, and each
-- user's roles as their groups give them (kept up to date by every change that can move
-- them, so reads and change detection need no join over memberships).
CREATE TABLE roles (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    -- The role of a user whose groups give none (at most one per organization).
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (org_id, slug)
);
CREATE UNIQUE INDEX roles_one_default ON roles (org_id) WHERE is_default;

CREATE TABLE role_mappings (
    group_id TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    directory_id TEXT NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (group_id, role_id)
);
CREATE INDEX role_mappings_by_directory ON role_mappings (directory_id);
CREATE INDEX role_mappings_by_role ON role_mappings (role_id);

-- The slugs a user's groups give, sorted, as a JSON array; no row when they give none.
CREATE TABLE user_roles (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
    directory_id TEXT NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    roles TEXT NOT NULL
);
CREATE INDEX user_roles_by_directory ON user_roles (directory_id);
