-- Server-side record of each owner and Admin Portal sign-in. The cookie carries the session's
-- id; every request checks it here, so signing out, a password change or revoking a portal
-- link ends the session on every instance, even for a copied cookie.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    portal_link_id TEXT,
    created_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
);
CREATE INDEX sessions_subject ON sessions (kind, subject);
CREATE INDEX sessions_portal_link ON sessions (portal_link_id);
