ALTER TABLE scim_requests DROP COLUMN change_summary;
