ALTER TABLE scim_requests DROP COLUMN request_id;
