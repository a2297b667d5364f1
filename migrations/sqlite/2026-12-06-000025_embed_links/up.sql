-- An embed link (for the Admin Portal inside a vendor's page): the origin of the page that
-- frames it and receives its messages. Set only on embed links, which open once.
ALTER TABLE portal_links ADD COLUMN embed_origin TEXT;
