-- Failed owner sign-ins, kept in the database so every instance enforces the same backoff.
CREATE TABLE login_attempts (
    key TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
