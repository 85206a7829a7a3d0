-- Triggers: the invariants every client gets (functions in sql/functions/tg_*.sql).

CREATE TRIGGER datasets_guard
    BEFORE UPDATE ON heimdall.synthetic_datasets
    FOR EACH ROW EXECUTE FUNCTION heimdall.tg_datasets_guard();

CREATE TRIGGER datasets_before_delete
    BEFORE DELETE ON heimdall.synthetic_datasets
    FOR EACH ROW EXECUTE FUNCTION heimdall.tg_datasets_before_delete();

CREATE TRIGGER features_counted_insert
    AFTER INSERT ON heimdall.measurement_features
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION heimdall.tg_features_counted();

CREATE TRIGGER features_counted_delete
    AFTER DELETE ON heimdall.measurement_features
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION heimdall.tg_features_counted();

CREATE CONSTRAINT TRIGGER features_need_iq
    AFTER INSERT ON heimdall.measurement_features
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION heimdall.tg_features_need_iq();

CREATE TRIGGER features_key_immutable
    BEFORE UPDATE OF dataset_id, sample_idx ON heimdall.measurement_features
    FOR EACH ROW EXECUTE FUNCTION heimdall.tg_sample_key_immutable();

CREATE TRIGGER iq_inserted
    AFTER INSERT ON heimdall.synthetic_iq_samples
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION heimdall.tg_iq_inserted();

CREATE CONSTRAINT TRIGGER iq_deleted
    AFTER DELETE ON heimdall.synthetic_iq_samples
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION heimdall.tg_iq_deleted();

CREATE TRIGGER iq_key_immutable
    BEFORE UPDATE OF dataset_id, sample_idx ON heimdall.synthetic_iq_samples
    FOR EACH ROW EXECUTE FUNCTION heimdall.tg_sample_key_immutable();
