-- The application of the backup guide (../shared/seeds): salons, their
-- staff, clients and bookings; booking."salonId" references salon.id.
CREATE TABLE salon (
    id serial PRIMARY KEY,
    name text NOT NULL,
    city text NOT NULL,
    opened_on date NOT NULL
);
CREATE TABLE staff (
    id serial PRIMARY KEY,
    "salonId" int NOT NULL REFERENCES salon (id),
    name text NOT NULL,
    role text NOT NULL
);
CREATE TABLE client (
    id serial PRIMARY KEY,
    name text NOT NULL,
    email text UNIQUE NOT NULL,
    phone text
);
CREATE TABLE booking (
    id serial PRIMARY KEY,
    "salonId" int NOT NULL REFERENCES salon (id),
    "clientId" int NOT NULL REFERENCES client (id),
    "staffId" int REFERENCES staff (id),
    service text NOT NULL,
    price numeric(8, 2) NOT NULL,
    starts_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX booking_salon ON booking ("salonId");
