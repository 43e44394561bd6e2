-- kitgate-notify.sql -- optional: tell kitgate at once when kits, peripherals or quantity types
-- change, so a rotated secret or a deleted kit is disconnected within a second instead of at the
-- next periodic reload (plugin_opt_auth_refresh_s). kitgate LISTENs on channel kitgate_kits.
--
--   psql "$DATABASE_URL" -f schema/kitgate-notify.sql
--
-- Statement-level triggers: a bulk UPDATE sends one notification, and PostgreSQL folds identical
-- notifications of one transaction into one. Idempotent; to remove it:
--   DROP TRIGGER kitgate_notify ON kits; DROP TRIGGER kitgate_notify ON peripherals;
--   DROP TRIGGER kitgate_notify ON quantity_types; DROP FUNCTION kitgate_notify_kits();

CREATE OR REPLACE FUNCTION kitgate_notify_kits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('kitgate_kits', TG_TABLE_NAME);
	RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS kitgate_notify ON kits;
CREATE TRIGGER kitgate_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON kits
	FOR EACH STATEMENT EXECUTE FUNCTION kitgate_notify_kits();
DROP TRIGGER IF EXISTS kitgate_notify ON peripherals;
CREATE TRIGGER kitgate_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON peripherals
	FOR EACH STATEMENT EXECUTE FUNCTION kitgate_notify_kits();
DROP TRIGGER IF EXISTS kitgate_notify ON quantity_types;
CREATE TRIGGER kitgate_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON quantity_types
	FOR EACH STATEMENT EXECUTE FUNCTION kitgate_notify_kits();
