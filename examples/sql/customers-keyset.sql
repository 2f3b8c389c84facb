-- Keyset paging: rows sharing one updated_at are never split between two batches,
-- because (updated_at, id) orders every row uniquely.
SELECT id, email, name, updated_at
FROM customers
WHERE (updated_at, id) > (COALESCE($1::timestamptz, '-infinity'), COALESCE($2::bigint, 0))
ORDER BY updated_at, id
LIMIT 500
