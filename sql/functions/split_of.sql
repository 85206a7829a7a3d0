-- heimdall.split_of(seed bigint, sample_idx integer, splits jsonb) -> text
--
-- Purpose: the one home, in SQL, of the stable train / val / test rule (issue 13). Its twin
--   in Python is heimdall_synth/splits.py; a test checks that both give every sample the
--   same split. A sample's split depends only on the dataset's seed, its index and the
--   fractions fixed at creation, so expanding a dataset never moves a sample.
-- Rule: h = sha256 of the UTF-8 text '<seed>:<sample_idx>' (plain decimal integers, the
--   seed signed as stored, e.g. '-7:42'); u = the first 6 bytes of h as a big-endian
--   unsigned integer, 0 <= u < 2^48 (exact in float8). With the fractions read as float8,
--   t = train and v = val: 'train' if u < t * 2^48, else 'val' if u < (t + v) * 2^48 (t + v
--   added in float8), else 'test'. So each split receives its fraction of the samples.
-- Parameters: seed - the dataset's seed; sample_idx - the sample index (>= 0); splits -
--   {"train", "val", "test"} as normalize_config stores it (a name left out counts 0);
--   NULL = the 0.8 / 0.1 / 0.1 of configs stored before revision 0003 (no "splits" key).
-- Returns: 'train', 'val' or 'test'; NULL when seed or sample_idx is NULL or sample_idx < 0.
-- Errors: none (fractions are not checked here: normalize_config checked them).
-- Locks: none. IMMUTABLE, PARALLEL SAFE: usable in indexes and parallel scans.
CREATE OR REPLACE FUNCTION heimdall.split_of(seed bigint, sample_idx integer, splits jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
    SELECT CASE WHEN x.u < x.t * 281474976710656.0::float8 THEN 'train'
                WHEN x.u < (x.t + x.v) * 281474976710656.0::float8 THEN 'val'
                ELSE 'test' END
      FROM (SELECT ('x' || encode(substring(sha256(convert_to(split_of.seed::text || ':' || split_of.sample_idx::text,
                                                              'UTF8')) FROM 1 FOR 6), 'hex'))::bit(48)::bigint::float8 AS u,
                   coalesce((s.f ->> 'train')::float8, 0) AS t,
                   coalesce((s.f ->> 'val')::float8, 0) AS v
              FROM (SELECT coalesce(split_of.splits, '{"train": 0.8, "val": 0.1, "test": 0.1}'::jsonb) AS f) s) x
     WHERE split_of.seed IS NOT NULL AND split_of.sample_idx >= 0
$$;

COMMENT ON FUNCTION heimdall.split_of(bigint, integer, jsonb) IS
    'Stable split (train/val/test) of sample sample_idx of a dataset with this seed and these fractions.';
