-- What a logged write changed, as Roster recorded it while applying it ("+200 members",
-- "familyName Gonzalez → Nakamura"): the request inspector's summary, which must not depend
-- on the logged request body (cut at 16 KiB). NULL for reads, refusals and older rows.
ALTER TABLE scim_requests ADD COLUMN change_summary TEXT;
