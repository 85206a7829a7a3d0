-- Revision 0003 (propagation), stateful delta down: back to 0002's tables. Runs between
-- dropping 0003's replaceable set and replaying 0002's.
UPDATE heimdall.config_keys SET description = 'Receive antenna gain (all receivers)'
 WHERE key = 'rx_antenna_gain_dbi';
UPDATE heimdall.config_keys SET description = 'Probability of a LOS link (Rician) vs NLOS (Rayleigh)'
 WHERE key = 'los_probability';
UPDATE heimdall.config_keys SET description = 'Log-normal shadowing standard deviation'
 WHERE key = 'shadowing_sigma_db';
UPDATE heimdall.config_keys SET description = 'Receiver layout: {"mode":"fixed","stations":[{id,name,lat,lon,alt_m}]} or {"mode":"random"|"hexagonal","count_min","count_max","area":{lat_min,lat_max,lon_min,lon_max},"alt_m"}'
 WHERE key = 'receivers';
-- Propagation (issue 11): its truth columns are dropped (lost). A dataset created with a
-- "propagation" config keeps that config; an older worker would ignore the key and generate
-- free-space samples, so such datasets are not to be expanded or repaired after a downgrade.
DELETE FROM heimdall.config_keys WHERE key IN ('propagation', 'tx_height_agl_min_m', 'tx_height_agl_max_m', 'tx_antenna');
ALTER TABLE heimdall.measurement_features
    DROP COLUMN polarization_loss_db,
    DROP COLUMN rx_antenna_gain_db,
    DROP COLUMN tx_antenna_gain_db,
    DROP COLUMN excess_delay_s,
    DROP COLUMN path_loss_median_db,
    DROP COLUMN rx_height_agl_m,
    DROP COLUMN tx_height_agl_m;
