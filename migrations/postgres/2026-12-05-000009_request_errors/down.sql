DROP INDEX scim_requests_errors;
