-- Custom attributes the app owner declares per organization, each read from a SCIM attribute
-- path of the user's resource (`source`), and the directories' own paths for them (an IT
-- admin's remapping to what their provider actually sends). Values are not stored: they are
-- read from the user's resource with the path in force, so they can never drift from it.
CREATE TABLE custom_attributes (
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, name)
);

CREATE TABLE attribute_mappings (
    directory_id TEXT NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (directory_id, name)
);
