-- An API key may be scoped to one organization: it then reads and changes that
-- organization only. NULL: a vendor-wide key, as before.
ALTER TABLE api_keys ADD COLUMN org_id TEXT REFERENCES organizations (id) ON DELETE CASCADE;
