-- Revision 0002 (hardening), stateful delta up. Hand-written; runs between dropping 0001's
-- replaceable set and replaying 0002's. Existing rows keep their meaning.

-- Claims are bound to a token (claim_chunk hands it out; every later worker call presents
-- it). Appended at the end, as in sql/schema.sql. Chunks running at upgrade time have no
-- token: their old worker's calls fail as "claim lost" and the chunk is re-claimed after
-- its visibility timeout.
ALTER TABLE heimdall.generation_chunks ADD COLUMN claim_token uuid;

-- Names are printable and never read as a uuid. Added NOT VALID so an upgrade never fails
-- on an old name, then validated when every existing name passes (the usual case); an old
-- offending name is reported and keeps working until renamed.
ALTER TABLE heimdall.synthetic_datasets ADD CONSTRAINT synthetic_datasets_name_printable CHECK (
        name !~ '[\u0001-\u001f\u007f-\u009f]'
        AND lower(translate(name, '{}-', '')) !~ '^(urn:uuid:)?[0-9a-f]{32}$') NOT VALID;
DO $$
DECLARE
    v_bad text[];
BEGIN
    SELECT array_agg(quote_literal(d.name)) INTO v_bad FROM heimdall.synthetic_datasets d
     WHERE NOT (d.name !~ '[\u0001-\u001f\u007f-\u009f]'
                AND lower(translate(d.name, '{}-', '')) !~ '^(urn:uuid:)?[0-9a-f]{32}$');
    IF v_bad IS NULL THEN
        ALTER TABLE heimdall.synthetic_datasets VALIDATE CONSTRAINT synthetic_datasets_name_printable;
    ELSE
        RAISE WARNING 'datasets with names that are no longer accepted (rename them): %', array_to_string(v_bad, ', ');
    END IF;
END
$$;

-- The secret the feature-row counting trigger uses to prove itself to the num_samples guard.
CREATE TABLE heimdall.trust_key (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    key     text NOT NULL DEFAULT gen_random_uuid()::text
);
INSERT INTO heimdall.trust_key DEFAULT VALUES;

-- A chunk's draws are bounded: at most 10,000 attempts per sample (was 1,000,000: days
-- per chunk for a config that never accepts). Stored configs are never re-normalized.
UPDATE heimdall.config_keys SET max_value = 10000 WHERE key = 'max_attempts';
