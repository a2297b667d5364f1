-- A role change whose users are still being recomputed (in steps, after the change itself
-- committed). The row is written with the change and removed after its last step; a row whose
-- claim ran out belongs to an instance that stopped midway, and another instance recomputes
-- the whole directory for it.
CREATE TABLE role_refreshes (
    id TEXT PRIMARY KEY NOT NULL,
    directory_id TEXT NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    -- Whether the change moved the default role, and the default before it.
    default_changed BOOLEAN NOT NULL,
    default_before TEXT,
    claimed_until TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX role_refreshes_by_claim ON role_refreshes (claimed_until);
