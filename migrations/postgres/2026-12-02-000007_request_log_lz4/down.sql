ALTER TABLE scim_requests
    ALTER COLUMN request_body SET COMPRESSION default,
    ALTER COLUMN response_excerpt SET COMPRESSION default;
