-- A new user's search key and its place among the users waiting to be indexed are inserted by
-- `users::insert` itself. With this trigger, inserting a user was a multi-row write, which
-- SQLite guards with a statement journal: a copy of every page the insert touched (4 % of a
-- create, in the writer's thread).
DROP TRIGGER user_search_insert;
