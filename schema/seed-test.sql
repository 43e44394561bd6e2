-- seed-test.sql -- test/demo data for kitgate: nkits kits with one active configuration and three peripherals each.
--
-- psql -v nkits=100 -f schema/astroplant.sql -f schema/seed-test.sql   (nkits defaults to 10)
--
-- Kit i (1..nkits): kits.id = i, serial 'k-test-' || lpad(i, 4, '0'), one active configuration
-- kit_configurations.id = i, peripherals id = i*10+1 .. i*10+3 (all in configuration i).
-- Quantity types 1..5 come from astroplant.sql. Idempotent (ON CONFLICT DO NOTHING), and the
-- sequences are moved past the fixed ids so rows created later get fresh ids.
-- The password hash is a placeholder in AstroPlant's format; MQTT passwords of test kits live in
-- the tests' password_file.

\if :{?nkits}
\else
\set nkits 10
\endif

INSERT INTO kits (id, serial, password_hash, name, description)
SELECT i, 'k-test-' || lpad(i::text, 4, '0'),
	'PBKDF2$sha256$15000$kitgateTestSalt00000$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
	'Test kit ' || i, 'kitgate test kit'
FROM generate_series(1, :nkits) AS i
ON CONFLICT DO NOTHING;

INSERT INTO peripheral_definitions (id, "name", description, brand, model, symbol_location, symbol,
	configuration_schema, command_schema)
VALUES (1, 'kitgate test sensor', 'A sensor used by the kitgate tests', 'kitgate', 'test-1',
	'astroplant_kit.peripherals.test', 'TestSensor', '{"type": "object"}', NULL)
ON CONFLICT DO NOTHING;

INSERT INTO peripheral_definition_expected_quantity_types (id, quantity_type_id, peripheral_definition_id)
SELECT q.id, q.id, 1 FROM quantity_types q WHERE q.id BETWEEN 1 AND 5
ON CONFLICT DO NOTHING;

INSERT INTO kit_configurations (id, kit_id, description, controller_symbol_location, controller_symbol,
	control_rules, active, first_activated_at)
SELECT i, i, 'kitgate test configuration', 'astroplant_kit.controller', 'Controller', '{}', true, now()
FROM generate_series(1, :nkits) AS i
ON CONFLICT DO NOTHING;

INSERT INTO peripherals (id, kit_id, kit_configuration_id, peripheral_definition_id, "name", configuration)
SELECT i * 10 + j, i, i, 1, 'sensor-' || j, '{}'
FROM generate_series(1, :nkits) AS i, generate_series(1, 3) AS j
ON CONFLICT DO NOTHING;

SELECT setval(pg_get_serial_sequence('kits', 'id'), GREATEST((SELECT max(id) FROM kits), 1));
SELECT setval(pg_get_serial_sequence('peripheral_definitions', 'id'), GREATEST((SELECT max(id) FROM peripheral_definitions), 1));
SELECT setval(pg_get_serial_sequence('peripheral_definition_expected_quantity_types', 'id'),
	GREATEST((SELECT max(id) FROM peripheral_definition_expected_quantity_types), 1));
SELECT setval(pg_get_serial_sequence('kit_configurations', 'id'), GREATEST((SELECT max(id) FROM kit_configurations), 1));
SELECT setval(pg_get_serial_sequence('peripherals', 'id'), GREATEST((SELECT max(id) FROM peripherals), 1));
