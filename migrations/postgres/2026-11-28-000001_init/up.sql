-- Roster schema (PostgreSQL). Keep in step with ../../sqlite/2026-11-28-000001_init/up.sql.
CREATE TABLE settings (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE owners (
    id TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE owner_setup_links (
    id TEXT PRIMARY KEY NOT NULL,
    sha256 BYTEA NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);

CREATE TABLE organizations (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    scim_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX organizations_name ON organizations (name);

CREATE TABLE portal_links (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    sha256 BYTEA NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX portal_links_org ON portal_links (org_id);

CREATE TABLE directories (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    created_at TIMESTAMP NOT NULL,
    first_request_at TIMESTAMP,
    last_request_at TIMESTAMP
);
CREATE INDEX directories_org ON directories (org_id);

CREATE TABLE directory_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    directory_id TEXT NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    sha256 BYTEA NOT NULL UNIQUE,
    suffix TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX directory_tokens_directory ON directory_tokens (directory_id);

CREATE TABLE scim_users (
    id TEXT PRIMARY KEY NOT NULL,
    directory_id TEXT NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    user_name TEXT NOT NULL,
    user_name_norm TEXT NOT NULL,
    external_id TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    display_name TEXT,
    display_name_norm TEXT,
    -- name.givenName + name.familyName, as shown in the portal, and normalised for its search.
    full_name TEXT,
    full_name_norm TEXT,
    primary_email TEXT,
    resource TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP
);
-- userName is unique per directory among live users; a deleted user's name can be reused.
CREATE UNIQUE INDEX scim_users_user_name ON scim_users (directory_id, user_name_norm) WHERE deleted_at IS NULL;
CREATE INDEX scim_users_external_id ON scim_users (directory_id, external_id);
CREATE INDEX scim_users_display_name ON scim_users (directory_id, display_name_norm);
CREATE INDEX scim_users_updated ON scim_users (directory_id, updated_at);

CREATE TABLE user_emails (
    user_id TEXT NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    directory_id TEXT NOT NULL,
    value_norm TEXT NOT NULL,
    type_norm TEXT,
    is_primary BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (user_id, position)
);
CREATE INDEX user_emails_value ON user_emails (directory_id, value_norm);

CREATE TABLE scim_groups (
    id TEXT PRIMARY KEY NOT NULL,
    directory_id TEXT NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    display_name_norm TEXT NOT NULL,
    external_id TEXT,
    resource TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP
);
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (directory_id, display_name_norm) WHERE deleted_at IS NULL;
CREATE INDEX scim_groups_external_id ON scim_groups (directory_id, external_id);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);
