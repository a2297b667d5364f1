-- When a directory's first user and first group arrived, once a view found them. They never
-- change (users and groups are only tombstoned, and deleted only with their directory), and
-- finding them reads the whole directory (no index orders its rows by creation): kept here, a
-- restart does not read a directory of 100 000 users again for its page.
CREATE TABLE directory_arrivals (
    directory_id TEXT PRIMARY KEY NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    first_user_at TIMESTAMP,
    first_group_at TIMESTAMP
);
