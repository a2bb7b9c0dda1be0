-- Three log indexes held every row though their searches are for the rows that differ from the
-- common case: type (consume is most rows), status (200 is most) and group ('default' is most).
-- Each index costs every folded call a B-tree insert and the pages it dirties: with these three
-- partial, a 256-row fold of consume rows took ~2.2 ms instead of ~2.55 on a 1 KiB-page file,
-- the same as with the three dropped; in make bench's one-connection tail run, 1.69 ms mean
-- instead of 1.79-1.96 (docs/performance.md). A search for the common value walks the time
-- index instead (most rows match, so 20 are found at once); a search for any other value
-- names the index's condition (src/store/log_query.rs: RARE_TYPE, FAILED_STATUS, OTHER_GROUP,
-- in these exact words) so SQLite sees that the index applies.
DROP INDEX logs_type_created;
DROP INDEX logs_status_created;
DROP INDEX logs_group_created;
CREATE INDEX logs_type_created ON logs (type, created_at) WHERE type <> 2;
CREATE INDEX logs_status_created ON logs (status, created_at) WHERE status <> 200;
CREATE INDEX logs_group_created ON logs (user_group, created_at) WHERE user_group <> 'default';
