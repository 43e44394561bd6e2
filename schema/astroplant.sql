-- astroplant.sql -- the subset of the AstroPlant schema that kitgate writes (api migrations 2020-000 .. 2024-03).
--
-- Same table, column, index and constraint names and types as AstroPlant's Diesel migrations, so it
-- can be loaded into an existing AstroPlant database harmlessly: every statement is idempotent
-- (IF NOT EXISTS, ON CONFLICT DO NOTHING) and creates only AstroPlant's own index names, so it
-- never adds a second index to an existing table. Triggers the API needs but ingestion does not
-- (bump_updated_at, first_activated_at maintenance) are left out; first_activated_at is a plain
-- nullable column here.

SET client_min_messages = warning; -- no "already exists, skipping" notices on a re-run

CREATE TABLE IF NOT EXISTS kits (
	id serial4 PRIMARY KEY,
	serial varchar(20) NOT NULL,
	password_hash varchar(255) NOT NULL,
	name varchar(255) NULL,
	description text NULL,
	latitude numeric(11, 8) NULL,
	longitude numeric(11, 8) NULL,
	privacy_public_dashboard bool NOT NULL DEFAULT false,
	privacy_show_on_map bool NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS ix_kits_serial ON kits (serial);
CREATE INDEX IF NOT EXISTS ix_kits_privacy_show_on_map ON kits (privacy_show_on_map);

CREATE TABLE IF NOT EXISTS kit_configurations (
	id serial4 PRIMARY KEY,
	kit_id int4 NOT NULL REFERENCES kits (id) ON DELETE CASCADE ON UPDATE CASCADE,
	description text NULL,
	controller_symbol_location text NOT NULL,
	controller_symbol text NOT NULL,
	control_rules json NOT NULL,
	active bool NOT NULL DEFAULT false,
	first_activated_at timestamptz NULL,
	never_used bool NOT NULL GENERATED ALWAYS AS (first_activated_at IS NULL) STORED,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT active_and_never_used CHECK (NOT (active AND never_used))
);
CREATE INDEX IF NOT EXISTS ix_kit_configurations_active ON kit_configurations (active);
CREATE UNIQUE INDEX IF NOT EXISTS ix_kit_configurations_active_kit_id ON kit_configurations (kit_id) WHERE (active);

CREATE TABLE IF NOT EXISTS peripheral_definitions (
	id serial4 PRIMARY KEY,
	"name" varchar(100) NOT NULL,
	description text NULL,
	brand varchar(100) NULL,
	model varchar(100) NULL,
	symbol_location varchar(255) NOT NULL,
	symbol varchar(255) NOT NULL,
	configuration_schema json NOT NULL,
	command_schema json NULL,
	CONSTRAINT peripheral_definitions_name_key UNIQUE (name)
);

CREATE TABLE IF NOT EXISTS quantity_types (
	id serial4 PRIMARY KEY,
	physical_quantity varchar(255) NOT NULL,
	physical_unit varchar(255) NOT NULL,
	physical_unit_symbol varchar(255) NULL,
	CONSTRAINT quantity_types_physical_quantity_physical_unit_key UNIQUE (physical_quantity, physical_unit)
);

CREATE TABLE IF NOT EXISTS peripheral_definition_expected_quantity_types (
	id serial4 PRIMARY KEY,
	quantity_type_id int4 NOT NULL REFERENCES quantity_types (id),
	peripheral_definition_id int4 NOT NULL REFERENCES peripheral_definitions (id)
);

CREATE TABLE IF NOT EXISTS peripherals (
	id serial4 PRIMARY KEY,
	kit_id int4 NOT NULL REFERENCES kits (id) ON DELETE CASCADE ON UPDATE CASCADE,
	kit_configuration_id int4 NOT NULL REFERENCES kit_configurations (id) ON DELETE CASCADE ON UPDATE CASCADE,
	peripheral_definition_id int4 NOT NULL REFERENCES peripheral_definitions (id) ON DELETE CASCADE ON UPDATE CASCADE,
	name varchar(255) NOT NULL,
	configuration json NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_peripherals_kit_id ON peripherals (kit_id);

CREATE TABLE IF NOT EXISTS raw_measurements (
	id uuid PRIMARY KEY,
	peripheral_id int4 NOT NULL REFERENCES peripherals (id) ON DELETE CASCADE ON UPDATE CASCADE,
	kit_id int4 NOT NULL REFERENCES kits (id) ON DELETE CASCADE ON UPDATE CASCADE,
	kit_configuration_id int4 NOT NULL REFERENCES kit_configurations (id) ON DELETE CASCADE ON UPDATE CASCADE,
	quantity_type_id int4 NOT NULL REFERENCES quantity_types (id) ON DELETE CASCADE ON UPDATE CASCADE,
	value float8 NOT NULL,
	datetime timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_raw_measurements_datetime ON raw_measurements (datetime);
CREATE INDEX IF NOT EXISTS ix_raw_measurements_kit_configuration_id ON raw_measurements (kit_configuration_id);
CREATE INDEX IF NOT EXISTS ix_raw_measurements_kit_id ON raw_measurements (kit_id);
CREATE INDEX IF NOT EXISTS ix_raw_measurements_peripheral_id ON raw_measurements (peripheral_id);
CREATE INDEX IF NOT EXISTS ix_raw_measurements_quantity_type_id ON raw_measurements (quantity_type_id);

CREATE TABLE IF NOT EXISTS aggregate_measurements (
	id uuid PRIMARY KEY,
	peripheral_id int4 NOT NULL REFERENCES peripherals (id) ON DELETE CASCADE ON UPDATE CASCADE,
	kit_id int4 NOT NULL REFERENCES kits (id) ON DELETE CASCADE ON UPDATE CASCADE,
	kit_configuration_id int4 NOT NULL REFERENCES kit_configurations (id) ON DELETE CASCADE ON UPDATE CASCADE,
	quantity_type_id int4 NOT NULL REFERENCES quantity_types (id) ON DELETE CASCADE ON UPDATE CASCADE,
	datetime_start timestamptz NOT NULL,
	datetime_end timestamptz NOT NULL,
	"values" json NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_aggregate_measurements_datetime_start ON aggregate_measurements (datetime_start);
CREATE INDEX IF NOT EXISTS ix_aggregate_measurements_datetime_start_id ON aggregate_measurements (datetime_start, id);
CREATE INDEX IF NOT EXISTS ix_aggregate_measurements_kit_configuration_id ON aggregate_measurements (kit_configuration_id);
CREATE INDEX IF NOT EXISTS ix_aggregate_measurements_kit_id ON aggregate_measurements (kit_id);
CREATE INDEX IF NOT EXISTS ix_aggregate_measurements_peripheral_id ON aggregate_measurements (peripheral_id);
CREATE INDEX IF NOT EXISTS ix_aggregate_measurements_quantity_type_id ON aggregate_measurements (quantity_type_id);

CREATE TABLE IF NOT EXISTS kit_last_seen (
	kit_id int4 PRIMARY KEY REFERENCES kits (id) ON DELETE CASCADE ON UPDATE CASCADE,
	datetime_last_seen timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_kit_last_seen_datetime_last_seen ON kit_last_seen (datetime_last_seen);

-- The AstroPlant quantity types (astroplant-admin insert-astroplant-definitions); on a fresh
-- database they get ids 1..5 in this order.
INSERT INTO quantity_types (physical_quantity, physical_unit, physical_unit_symbol) VALUES
	('Temperature', 'Degrees Celsius', '°C'),
	('Pressure', 'Hectopascal', 'hPa'),
	('Humidity', 'Percent', '%'),
	('Concentration', 'Parts per million', 'PPM'),
	('Light intensity', 'Lux', 'lx')
ON CONFLICT (physical_quantity, physical_unit) DO NOTHING;
