ALTER TABLE api_keys DROP COLUMN org_id;
