-- Revision 0003 (propagation, issue 11), stateful delta up.


-- Propagation (issue 11): truth columns of the new path, appended at the end as in
-- sql/schema.sql. Existing rows keep NULL: they were generated with free space and no
-- heights (their configs have no "propagation" key and regenerate exactly as before).
ALTER TABLE heimdall.measurement_features
    ADD COLUMN tx_height_agl_m real,
    ADD COLUMN rx_height_agl_m real[],
    ADD COLUMN path_loss_median_db real[],
    ADD COLUMN excess_delay_s real[],
    ADD COLUMN tx_antenna_gain_db real[],
    ADD COLUMN rx_antenna_gain_db real[],
    ADD COLUMN polarization_loss_db real[];

-- New config keys (defaults for NEW configs only; stored configs are never re-normalized).
INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('propagation',            'object',
        '{"model": "itm", "terrain": null, "terrain_irregularity_m": 90, "surface_refractivity_n": 301,
          "climate": "continental_temperate", "ground_permittivity": 15, "ground_conductivity_s_m": 0.005,
          "polarization": "vertical", "rx_siting": "random", "tx_siting": "random",
          "nlos_excess_delay_mean_s": 0.000001}',
        NULL, NULL, false, NULL,
        'Path loss model: {"model":"itm"|"free_space","terrain":null (ITM area mode),"terrain_irregularity_m","surface_refractivity_n","climate","ground_permittivity","ground_conductivity_s_m","polarization","rx_siting","tx_siting","nlos_excess_delay_mean_s"} (docs/propagation.md)'),
    ('tx_height_agl_min_m',    'number',  '1.5',    0.5,     3000,     false, 'm',    'Lowest transmitter antenna height above ground (propagation)'),
    ('tx_height_agl_max_m',    'number',  '10',     0.5,     3000,     false, 'm',    'Highest transmitter antenna height above ground (>= tx_height_agl_min_m)'),
    ('tx_antenna',             'object',
        '{"body_loss_db": 8, "tilt_max_deg": 45, "xpd_los_db": 12, "xpd_nlos_db": 7}',
        NULL, NULL, false, NULL,
        'Handheld transmitter antenna (propagation): {"body_loss_db" (through the body, 0 in front),"tilt_max_deg" (tilt from vertical, uniform),"xpd_los_db","xpd_nlos_db" (cross-polar discrimination of the channel)}; peak gain tx_antenna_gain_dbi');
UPDATE heimdall.config_keys SET description = 'Receiver layout: {"mode":"fixed","stations":[{id,name,lat,lon,alt_m,height_agl_m,antenna}]} or {"mode":"random"|"hexagonal","count_min","count_max","area":{lat_min,lat_max,lon_min,lon_max},"alt_m","height_agl_m","antenna"}; antenna {"pattern":"omni"|"directional","gain_dbi","azimuth_deg","beamwidth_deg","front_to_back_db"}'
 WHERE key = 'receivers';
UPDATE heimdall.config_keys SET description = 'Log-normal shadowing standard deviation (free-space path loss; ITM draws its own location variability)'
 WHERE key = 'shadowing_sigma_db';
UPDATE heimdall.config_keys SET description = 'Probability of a LOS link (Rician) vs NLOS (Rayleigh); only configs without "propagation" (there LOS comes from the geometry)'
 WHERE key = 'los_probability';
UPDATE heimdall.config_keys SET description = 'Receive antenna gain (all receivers; with "propagation": the default gain_dbi of each receiver antenna)'
 WHERE key = 'rx_antenna_gain_dbi';
