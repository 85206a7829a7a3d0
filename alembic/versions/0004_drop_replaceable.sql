-- Drop the replaceable set (views, triggers, functions) and the roles' privileges; the
-- stateful objects (tables, rows, the queue) stay.
DO $drop$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS v FROM pg_class c
              WHERE c.relnamespace = 'heimdall'::regnamespace AND c.relkind IN ('v', 'm') LOOP
        EXECUTE format('DROP VIEW IF EXISTS %s CASCADE', r.v);
    END LOOP;
    FOR r IN SELECT t.tgname, t.tgrelid::regclass AS rel FROM pg_trigger t
               JOIN pg_class c ON c.oid = t.tgrelid
              WHERE c.relnamespace = 'heimdall'::regnamespace AND NOT t.tgisinternal LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p
              WHERE p.pronamespace = 'heimdall'::regnamespace LOOP
        EXECUTE format('DROP FUNCTION %s', r.f);
    END LOOP;
    FOR r IN SELECT rolname FROM pg_roles
              WHERE rolname IN ('heimdall_reader', 'heimdall_worker', 'heimdall_admin') LOOP
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA heimdall FROM %I', r.rolname);
    END LOOP;
END
$drop$;
