-- The application of the backup guide: salons, their staff, clients and
-- bookings (booking."salonId" references salon.id).
CREATE TABLE salon (id serial PRIMARY KEY, name text NOT NULL, city text NOT NULL);
CREATE TABLE staff (id serial PRIMARY KEY, "salonId" int NOT NULL REFERENCES salon(id), name text NOT NULL);
CREATE TABLE client (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL);
CREATE TABLE booking (
    id serial PRIMARY KEY,
    "salonId" int NOT NULL REFERENCES salon(id),
    "clientId" int NOT NULL REFERENCES client(id),
    "staffId" int REFERENCES staff(id),
    starts_at timestamptz NOT NULL
);
INSERT INTO salon (name, city)
  SELECT 'Salon ' || i, (ARRAY['Paris', 'Lyon', 'Lille', 'Nantes'])[1 + i % 4] FROM generate_series(1, 20) i;
INSERT INTO staff ("salonId", name) SELECT 1 + i % 20, 'Staff ' || i FROM generate_series(1, 80) i;
INSERT INTO client (name, email) SELECT 'Client ' || i, 'client' || i || '@example.org' FROM generate_series(1, 2000) i;
INSERT INTO booking ("salonId", "clientId", "staffId", starts_at)
  SELECT 1 + i % 20, 1 + i % 2000, 1 + i % 80, now() + (i || ' minutes')::interval FROM generate_series(1, 10000) i;
