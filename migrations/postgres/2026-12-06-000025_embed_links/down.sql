ALTER TABLE portal_links DROP COLUMN embed_origin;
