-- The quickstart's source table; events.db is built from this file:
--   sqlite3 examples/quickstart/events.db < examples/quickstart/seed.sql
-- Timestamps are stored as RFC 3339 text in one fixed form (UTC, `Z`, whole seconds), so that
-- SQLite's text comparison in the keyset WHERE clause is also their time order.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    updated_at TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    payload    TEXT
);
CREATE INDEX events_keyset ON events (updated_at, id);

INSERT INTO events (id, updated_at, kind, payload) VALUES
    (1, '2026-01-05T09:00:00Z', 'signup',   '{"user": "ada"}'),
    (2, '2026-01-05T09:00:00Z', 'signup',   '{"user": "grace"}'),
    (3, '2026-01-05T09:00:00Z', 'signup',   '{"user": "edsger"}'),
    (4, '2026-01-05T09:15:00Z', 'login',    '{"user": "ada"}'),
    (5, '2026-01-05T09:15:00Z', 'login',    '{"user": "grace"}'),
    (6, '2026-01-05T10:30:00Z', 'purchase', '{"user": "ada", "amount": 12.5}'),
    (7, '2026-01-05T10:30:00Z', 'purchase', '{"user": "edsger", "amount": 3}'),
    (8, '2026-01-05T11:00:00Z', 'logout',   '{"user": "ada"}'),
    (9, '2026-01-06T08:00:00Z', 'login',    '{"user": "barbara"}'),
    (10, '2026-01-06T08:00:00Z', 'purchase', '{"user": "barbara", "amount": 99.99}'),
    (11, '2026-01-06T08:05:00Z', 'logout',   '{"user": "barbara"}'),
    (12, '2026-01-06T12:00:00Z', 'signup',   '{"user": "alan"}');
