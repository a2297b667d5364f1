DROP TABLE scim_requests;
