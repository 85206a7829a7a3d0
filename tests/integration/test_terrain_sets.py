"""Terrain sets in the database (issue 11 item 3): register_terrain_set (immutable,
idempotent, every input checked), terrain_set, list_terrain_sets, who may call them, and
normalize_config's checks of a config that names a set (unknown set, digest, coverage of
the receivers and of the transmitter's placement area)."""

from __future__ import annotations

import hashlib
import json

import psycopg
import pytest
from psycopg import errors as pgerr
from psycopg.types.json import Jsonb

from tests.integration.test_security import ADMIN, READER, WORKER, login  # noqa: F401 (fixture)

SRTM3_BYTES = 2884802
SRTM1_BYTES = 25934402


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def tiles_json(names, size=SRTM3_BYTES, salt="") -> list[dict]:
    return [{"tile": t, "sha256": sha(t + salt), "bytes": size, "object_key": f"terrain/x/{t}.{sha(t + salt)}.hgt"}
            for t in names]


def register(conn, name, tiles):
    return conn.execute("SELECT heimdall.register_terrain_set(%s, %s)", (name, Jsonb(tiles))).fetchone()[0]


def normalize(conn, config) -> dict:
    return conn.execute("SELECT heimdall.normalize_config(%s)", (Jsonb(config),)).fetchone()[0]


# The default network's area (44.3-45.6 N, 7.0-9.3 E) and its transmitter placement area
# (20 km margin: 44.12-45.78 N, 6.75-9.55 E) need cells N44-N45 x E006-E009.
NW_ITALY = [f"N{la:02d}E{lo:03d}" for la in (44, 45) for lo in (6, 7, 8, 9)]


def test_register_returns_the_digest_and_is_idempotent(conn):
    tiles = tiles_json(["N45E008", "N45E007", "N44E007"])
    out = register(conn, "alps-3", tiles)
    # the digest, computed here independently: "<tile> <sha256>" lines sorted by tile
    digest = sha("\n".join(f"{t['tile']} {t['sha256']}" for t in sorted(tiles, key=lambda t: t["tile"])))
    assert out == {"name": "alps-3", "sha256": digest, "resolution_arcsec": 3, "num_tiles": 3, "lat_min": 44,
                   "lat_max": 46, "lon_min": 7, "lon_max": 9, "bytes": 3 * SRTM3_BYTES, "created": True}
    again = register(conn, "alps-3", list(reversed(tiles)))
    assert again == {**out, "created": False}
    rows = conn.execute("SELECT tile, lat, lon, sha256, bytes, object_key FROM heimdall.terrain_tiles "
                        "WHERE set_name = 'alps-3' ORDER BY tile").fetchall()
    assert rows == [(t["tile"], la, lo, t["sha256"], SRTM3_BYTES, t["object_key"])
                    for t, la, lo in zip(sorted(tiles, key=lambda t: t["tile"]), (44, 45, 45), (7, 7, 8), strict=True)]
    audit = conn.execute("SELECT action, detail FROM heimdall.audit_log WHERE action = 'terrain_import'").fetchall()
    assert audit == [("terrain_import", {"terrain_set": "alps-3", "sha256": digest, "num_tiles": 3,
                                         "resolution_arcsec": 3})]


def test_a_set_is_immutable(conn):
    register(conn, "alps", tiles_json(["N45E007", "N45E008"]))
    for other in (tiles_json(["N45E007", "N45E008"], salt="other bytes"), tiles_json(["N45E007"]),
                  tiles_json(["N45E007", "N45E008", "N44E007"])):
        with pytest.raises(pgerr.UniqueViolation) as ei:
            register(conn, "alps", other)
        assert 'terrain set "alps" exists with other tiles' in ei.value.diag.message_primary
        assert "immutable" in ei.value.diag.message_primary and "new name" in ei.value.diag.message_hint
    assert conn.execute("SELECT count(*) FROM heimdall.terrain_tiles").fetchone()[0] == 2


BAD = [
    ("", tiles_json(["N45E007"]), "terrain set name"),
    ("-lead", tiles_json(["N45E007"]), "terrain set name"),
    ("a/b", tiles_json(["N45E007"]), "terrain set name"),
    ("x" * 101, tiles_json(["N45E007"]), "terrain set name"),
    ("ok", [], "1 to 65000 tiles"),
    ("ok", {"tile": "N45E007"}, "JSON array"),
    ("ok", ["N45E007"], '{"tile", "sha256", "bytes", "object_key"}'),
    ("ok", [{**tiles_json(["N45E007"])[0], "extra": 1}], '{"tile", "sha256", "bytes", "object_key"}'),
    ("ok", tiles_json(["N45E7"]), "SRTM cell"),
    ("ok", tiles_json(["S00E007"]), "SRTM cell"),
    ("ok", tiles_json(["N45W000"]), "SRTM cell"),
    ("ok", tiles_json(["N90E000"]), "SRTM cell"),
    ("ok", tiles_json(["N45E180"]), "SRTM cell"),
    ("ok", tiles_json(["n45e007"]), "SRTM cell"),
    ("ok", [{**tiles_json(["N45E007"])[0], "sha256": "A" * 64}], "64 lower-case hex"),
    ("ok", tiles_json(["N45E007"], size=1000), "25934402 (SRTM1"),
    ("ok", [{**tiles_json(["N45E007"])[0], "object_key": "a\nb"}], "object_key"),
    ("ok", [{**tiles_json(["N45E007"])[0], "object_key": ""}], "object_key"),
    ("ok", tiles_json(["N45E007", "N45E007"]), "N45E007 is given more than once"),
    ("ok", tiles_json(["N45E007"]) + tiles_json(["N45E008"], size=SRTM1_BYTES), "mix SRTM1"),
]


@pytest.mark.parametrize("name, tiles, words", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_is_refused_with_22023(conn, name, tiles, words):
    with pytest.raises(pgerr.InvalidParameterValue) as ei:
        register(conn, name, tiles)
    assert words in ei.value.diag.message_primary
    assert conn.execute("SELECT count(*) FROM heimdall.terrain_sets").fetchone()[0] == 0


def test_edge_cells_are_real_cells(conn):
    out = register(conn, "edges", tiles_json(["S90W180", "N89E179", "S01W001", "N00E000"]))
    assert (out["lat_min"], out["lat_max"], out["lon_min"], out["lon_max"]) == (-90, 90, -180, 180)


def test_terrain_set_and_list(conn):
    with pytest.raises(pgerr.NoDataFound) as ei:
        conn.execute("SELECT heimdall.terrain_set('nope')")
    assert "terrain set 'nope' does not exist" in ei.value.diag.message_primary
    assert "heimdall-synth terrain import" in ei.value.diag.message_hint
    tiles = tiles_json(NW_ITALY, size=SRTM1_BYTES)
    reg = register(conn, "nw-italy", tiles)
    got = conn.execute("SELECT heimdall.terrain_set('nw-italy')").fetchone()[0]
    assert got["sha256"] == reg["sha256"] and got["samples_per_side"] == 3601 and got["resolution_arcsec"] == 1
    assert [t["tile"] for t in got["tiles"]] == sorted(NW_ITALY)
    assert got["tiles"][0] == {"tile": "N44E006", "lat": 44, "lon": 6, "sha256": sha("N44E006"),
                               "bytes": SRTM1_BYTES, "object_key": f"terrain/x/N44E006.{sha('N44E006')}.hgt"}
    with pytest.raises(pgerr.NoDataFound) as ei:
        conn.execute("SELECT heimdall.terrain_set('nope')")
    assert "terrain sets: nw-italy" in ei.value.diag.message_hint
    conn.execute("SELECT heimdall.create_dataset('with-terrain', 'feature_based', %s, 1, 0)",
                 (Jsonb({"propagation": {"terrain": "nw-italy"}}),))
    rows = conn.execute("SELECT name, resolution_arcsec, num_tiles, lat_min, lat_max, lon_min, lon_max, bytes, "
                        "sha256, datasets FROM heimdall.list_terrain_sets()").fetchall()
    assert rows == [("nw-italy", 1, 8, 44, 46, 6, 10, 8 * SRTM1_BYTES, reg["sha256"], 1)]


def test_roles(conn, login):  # noqa: F811
    tiles = tiles_json(["N45E007"])
    admin, reader, worker = login(ADMIN), login(READER), login(WORKER)
    assert register(admin, "by-admin", tiles)["created"] is True
    assert conn.execute("SELECT created_by FROM heimdall.terrain_sets").fetchone()[0] == admin.info.user
    for who in (reader, worker):
        with pytest.raises(pgerr.InsufficientPrivilege):
            register(who, "nope", tiles)
    for who in (reader, worker, admin):
        assert who.execute("SELECT heimdall.terrain_set('by-admin')").fetchone()[0]["num_tiles"] == 1
    assert [r[0] for r in reader.execute("SELECT name FROM heimdall.list_terrain_sets()")] == ["by-admin"]
    with pytest.raises(pgerr.InsufficientPrivilege):
        worker.execute("SELECT * FROM heimdall.list_terrain_sets()")
    # immutable for every role: no table privilege but SELECT (reader)
    for who in (admin, worker):
        with pytest.raises(pgerr.InsufficientPrivilege):
            who.execute("UPDATE heimdall.terrain_tiles SET sha256 = repeat('0', 64)")
        with pytest.raises(pgerr.InsufficientPrivilege):
            who.execute("DELETE FROM heimdall.terrain_sets")
    # a reader normalizes a config with a terrain set (it reads the tables it checks)
    assert normalize(reader, {"propagation": {"terrain": "by-admin"},
                              "receivers": {"mode": "fixed", "stations": [
                                  {"id": f"s{i}", "lat": 45.4 + i / 10, "lon": 7.4 + i / 10} for i in range(3)]},
                              "inside_ratio": 1})["propagation"]["terrain"] == "by-admin"


# --------------------------------------------------------------------------- normalize_config


def test_a_config_naming_a_set_carries_its_digest(conn):
    reg = register(conn, "nw-italy", tiles_json(NW_ITALY))
    cfg = normalize(conn, {"propagation": {"terrain": "nw-italy"}})
    assert cfg["propagation"]["terrain"] == "nw-italy" and cfg["propagation"]["terrain_sha256"] == reg["sha256"]
    assert normalize(conn, cfg) == cfg
    # the other keys are as without a terrain set
    plain = normalize(conn, {})
    assert {k: v for k, v in cfg.items() if k != "propagation"} == {k: v for k, v in plain.items() if k != "propagation"}
    assert cfg["propagation"] == {**plain["propagation"], "terrain": "nw-italy", "terrain_sha256": reg["sha256"]}
    # the stored config is what the worker reads
    ds = conn.execute("SELECT heimdall.create_dataset('t', 'iq_raw', %s, 1, 0)", (Jsonb(cfg),)).fetchone()[0]
    stored = conn.execute("SELECT config FROM heimdall.synthetic_datasets WHERE id = %s", (ds,)).fetchone()[0]
    assert stored == cfg


def err(conn, config) -> psycopg.errors.Diagnostic:
    with pytest.raises(pgerr.InvalidParameterValue) as ei:
        normalize(conn, config)
    return ei.value.diag


def test_unknown_set_and_wrong_digest(conn):
    d = err(conn, {"propagation": {"terrain": "alps"}})
    assert d.message_primary == 'config key "propagation": "terrain": there is no terrain set named "alps"'
    assert d.message_hint == "no terrain set is registered; import one with: heimdall-synth terrain import NAME DIR"
    register(conn, "nw-italy", tiles_json(NW_ITALY))
    assert err(conn, {"propagation": {"terrain": "alps"}}).message_hint.startswith("terrain sets: nw-italy;")
    d = err(conn, {"propagation": {"terrain": "nw-italy", "terrain_sha256": "0" * 64}})
    assert '"terrain_sha256"' in d.message_primary and 'digest of terrain set "nw-italy"' in d.message_primary
    d = err(conn, {"propagation": {"terrain_sha256": "0" * 64}})
    assert '"terrain_sha256" belongs to a terrain set' in d.message_primary
    assert '"propagation"' in err(conn, {"propagation": {"terrain": ""}}).message_primary


def test_the_set_must_cover_the_receivers_and_the_placement_area(conn):
    register(conn, "no-e009", tiles_json([t for t in NW_ITALY if not t.endswith("E009")]))
    register(conn, "no-e006", tiles_json([t for t in NW_ITALY if not t.endswith("E006")]))
    register(conn, "full", tiles_json(NW_ITALY))
    # the default stations reach 9.19 E: E009 is the receivers'
    d = err(conn, {"propagation": {"terrain": "no-e009"}})
    assert d.message_primary.startswith('config key "receivers": terrain set "no-e009" does not cover the receivers')
    assert d.message_primary.endswith("it lacks tile(s) N44E009, N45E009")
    # E006 only for transmitters placed outside the receivers' box (20 km margin)
    d = err(conn, {"propagation": {"terrain": "no-e006"}})
    assert d.message_primary.startswith('config key "outside_margin_km": terrain set "no-e006" does not cover the '
                                        "transmitter placement area")
    assert d.message_primary.endswith("it lacks tile(s) N44E006, N45E006") and "inside_ratio" in d.message_hint
    for fine in ({"inside_ratio": 1}, {"outside_margin_km": 0}, {"outside_margin_km": 5}):
        assert normalize(conn, {"propagation": {"terrain": "no-e006"}, **fine})["propagation"]["terrain"] == "no-e006"
    assert normalize(conn, {"propagation": {"terrain": "full"}})["propagation"]["terrain"] == "full"
    # random layout: its area, widened by the margin at the area's latitude farthest from the equator
    area = {"lat_min": 44.5, "lat_max": 45.5, "lon_min": 7.2, "lon_max": 10.2}
    d = err(conn, {"propagation": {"terrain": "full"}, "receivers": {"mode": "random", "area": area}})
    assert "does not cover the receivers" in d.message_primary and d.message_primary.endswith("N44E010, N45E010")
    area = {"lat_min": 44.5, "lat_max": 45.5, "lon_min": 7.2, "lon_max": 9.75}   # + 0.2566 deg at 45.5 N
    d = err(conn, {"propagation": {"terrain": "full"}, "receivers": {"mode": "hexagonal", "area": area}})
    assert "transmitter placement area" in d.message_primary and d.message_primary.endswith("N44E010, N45E010")
    area["lon_max"] = 9.74                                                        # 9.9966: inside E009
    assert normalize(conn, {"propagation": {"terrain": "full"}, "receivers": {"mode": "random", "area": area}})


def test_many_missing_tiles_are_summarized(conn):
    register(conn, "one", tiles_json(["N45E007"]))
    d = err(conn, {"propagation": {"terrain": "one"},
                   "receivers": {"mode": "random", "area": {"lat_min": 40, "lat_max": 50, "lon_min": 0, "lon_max": 10}}})
    assert "(99 in all)" in d.message_primary and len(d.message_primary) < 500


def test_configs_without_terrain_are_untouched(conn):
    """A config without a terrain set never reads the terrain tables (a worker, which may
    not, can still normalize it) and gets no terrain_sha256."""
    cfg = normalize(conn, {"propagation": {"model": "itm"}})
    assert "terrain_sha256" not in cfg["propagation"] and cfg["propagation"]["terrain"] is None
    assert json.dumps(cfg["propagation"], sort_keys=True) == json.dumps(normalize(conn, {})["propagation"], sort_keys=True)
