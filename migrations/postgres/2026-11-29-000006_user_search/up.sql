-- The portal's search finds a substring of a user's names or email. A trigram index answers
-- it without reading every user of the organization. pg_trgm is a trusted extension: the
-- database owner may create it. It lives in `public` so every schema's index can name it.
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
CREATE INDEX scim_users_search ON scim_users USING gin (
    (user_name_norm || ' ' || COALESCE(display_name_norm, '') || ' ' || COALESCE(full_name_norm, '')
        || ' ' || COALESCE(primary_email, '')) public.gin_trgm_ops
) WHERE deleted_at IS NULL;
