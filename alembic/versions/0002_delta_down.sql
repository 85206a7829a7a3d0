-- Revision 0002 (hardening), stateful delta down: back to 0001's tables. Runs between
-- dropping 0002's replaceable set and replaying 0001's.
UPDATE heimdall.config_keys SET max_value = 1000000 WHERE key = 'max_attempts';
DROP TABLE heimdall.trust_key;
ALTER TABLE heimdall.synthetic_datasets DROP CONSTRAINT synthetic_datasets_name_printable;
ALTER TABLE heimdall.generation_chunks DROP COLUMN claim_token;
-- 0002's grants.sql revoked the owner's default EXECUTE for PUBLIC; 0001 did not.
ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO PUBLIC;
