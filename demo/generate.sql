-- Fills the schema of demo/schema.sql with realistic rows at a chosen scale:
--   psql "$URI" -v scale=10 -f demo/generate.sql
-- scale 1: 5 salons, 20 staff, 400 clients, 2,000 bookings; it grows
-- linearly (scale 500 is about 1 GB with indexes).
\set ON_ERROR_STOP on
\if :{?scale}
\else
\set scale 1
\endif
SELECT setseed(0.42) AS seeded \gset
INSERT INTO salon (name, city, opened_on)
SELECT (ARRAY['Coupe', 'Atelier', 'Studio', 'Maison', 'Salon'])[1 + i % 5] || ' ' ||
       (ARRAY['Lumière', 'Étoile', 'Soleil', 'Rivoli', 'Opéra', 'Bastille', 'Marais'])[1 + i % 7] || ' ' || i,
       (ARRAY['Paris', 'Lyon', 'Lille', 'Nantes', 'Bordeaux', 'Marseille', 'Toulouse'])[1 + i % 7],
       date '2015-01-01' + ((i * 37) % 3000)::int
  FROM generate_series(1, 5 * :scale) i;
INSERT INTO staff ("salonId", name, role)
SELECT 1 + i % (5 * :scale),
       (ARRAY['Camille', 'Léa', 'Hugo', 'Inès', 'Lucas', 'Chloé', 'Nora', 'Jules'])[1 + i % 8] || ' ' ||
       (ARRAY['Martin', 'Bernard', 'Dubois', 'Thomas', 'Robert', 'Petit'])[1 + i % 6],
       (ARRAY['coiffeur', 'coloriste', 'barbier', 'esthéticienne'])[1 + i % 4]
  FROM generate_series(1, 20 * :scale) i;
INSERT INTO client (name, email, phone)
SELECT 'Client ' || i, 'client' || i || '@example.org', '+33 6 ' || lpad(((i::bigint * 7919) % 100000000)::text, 8, '0')
  FROM generate_series(1, 400 * :scale) i;
INSERT INTO booking ("salonId", "clientId", "staffId", service, price, starts_at, created_at)
SELECT 1 + (i::bigint * 31) % (5 * :scale),
       1 + (i::bigint * 17) % (400 * :scale),
       CASE WHEN i % 10 = 0 THEN NULL ELSE 1 + (i::bigint * 13) % (20 * :scale) END,
       (ARRAY['coupe', 'couleur', 'brushing', 'barbe', 'soin'])[1 + i % 5],
       (20 + (i::bigint * 7) % 130)::numeric(8, 2),
       timestamptz '2026-01-01 09:00:00+00' + ((i::bigint * 97) % 525600) * interval '1 minute',
       timestamptz '2025-12-01 00:00:00+00' + (i % 40000) * interval '1 minute'
  FROM generate_series(1, 2000 * :scale) i;
ANALYZE salon, staff, client, booking;
