-- Branding of the Admin Portal: one row instance-wide (scope '*') and optionally one per
-- organization (scope = its id) overriding it. A NULL column falls back to the wider scope
-- (and the product name finally to --product-name).
CREATE TABLE brands (
    scope TEXT PRIMARY KEY NOT NULL,
    product_name TEXT,
    -- '#rrggbb', checked for contrast with white text before it is stored.
    accent TEXT,
    -- An email address or an https URL.
    support TEXT,
    logo BLOB,
    logo_type TEXT,
    -- Hex SHA-256 of logo: its URL, so a replaced logo gets a new one.
    logo_sha256 TEXT
);
CREATE INDEX brands_by_logo ON brands (logo_sha256);
