-- The request log behind the portal's request inspector: every SCIM request of a directory,
-- redacted, with bounded retention (see src/db/requests.rs).
CREATE TABLE scim_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    directory_id TEXT NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    at TIMESTAMP NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    duration_us BIGINT NOT NULL,
    request_body TEXT,
    response_excerpt TEXT,
    error_kind TEXT,
    resource_type TEXT,
    resource_id TEXT
);
CREATE INDEX scim_requests_directory ON scim_requests (directory_id, id);
CREATE INDEX scim_requests_resource ON scim_requests (directory_id, resource_id);
