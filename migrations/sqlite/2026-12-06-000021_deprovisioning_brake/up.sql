-- The deprovisioning brake. The owner's thresholds per organization; an IT admin may tighten
-- them per directory (NULL: the organization's). A directory's brake is 'clear', 'engaged'
-- (deactivations and deletions are recorded for SCIM but held from the application) or
-- 'paused' (the held changes were rejected; SCIM is refused until an admin resumes).
ALTER TABLE organizations ADD COLUMN brake_min_users INTEGER NOT NULL DEFAULT 10;
ALTER TABLE organizations ADD COLUMN brake_min_percent INTEGER NOT NULL DEFAULT 10;
ALTER TABLE organizations ADD COLUMN brake_window_minutes INTEGER NOT NULL DEFAULT 10;
ALTER TABLE organizations ADD COLUMN brake_settle_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE directories ADD COLUMN brake_min_users INTEGER;
ALTER TABLE directories ADD COLUMN brake_min_percent INTEGER;
ALTER TABLE directories ADD COLUMN brake_window_minutes INTEGER;
ALTER TABLE directories ADD COLUMN brake_settle_seconds INTEGER;
ALTER TABLE directories ADD COLUMN brake_state TEXT NOT NULL DEFAULT 'clear';
ALTER TABLE directories ADD COLUMN brake_changed_at TIMESTAMP;
-- What engaged the brake, in words ("Okta deactivated 31 users in 4 minutes — 62 % of the
-- directory").
ALTER TABLE directories ADD COLUMN brake_reason TEXT;

-- Every deactivation or deletion of an active user, for the rolling window's count (older rows
-- are pruned as new ones arrive). kind: 'deactivated' or 'deleted'.
CREATE TABLE deprovisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    directory_id TEXT NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX deprovisions_by_directory ON deprovisions (directory_id, at);

-- A user whose deactivation or deletion the application has not seen yet: held by the
-- engaged brake (release_at NULL), or settling until release_at. `app_view` is the user as
-- the application last saw it (its row as JSON), `app_groups` its groups then (a JSON array).
CREATE TABLE held_users (
    directory_id TEXT NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    held_at TIMESTAMP NOT NULL,
    release_at TIMESTAMP,
    app_view TEXT NOT NULL,
    app_groups TEXT NOT NULL,
    PRIMARY KEY (directory_id, user_id)
);
CREATE INDEX held_users_by_release ON held_users (release_at);

-- The events of held users, in the order they were emitted, delivered on release.
CREATE TABLE held_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    directory_id TEXT NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    data TEXT NOT NULL,
    held_at TIMESTAMP NOT NULL
);
CREATE INDEX held_events_by_directory ON held_events (directory_id, id);
