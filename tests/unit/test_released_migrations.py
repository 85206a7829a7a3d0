"""A released migration never changes (docs/migrations.md): the files of every released
revision are pinned here by sha256. A schema change goes into a new revision; when that
revision is released, its files are added to RELEASED."""

from __future__ import annotations

import hashlib
from pathlib import Path

VERSIONS = Path(__file__).resolve().parents[2] / "alembic" / "versions"

RELEASED = {
    "0001_initial.py": "c8fbbcbccb388ed51231cad91d67ed79df2d583789e56abcadade3e156b8537a",
    "0001_initial.sql": "c703babedeb7e57bf364143e5d5335562b1413f4f050851bd6d77042d5e55434",
    "0001_pgmq_1.13.0.sql": "e26ffdd0dba734392b6f1a4988a2a402413157ccb5f6e9633ea35646c89f146c",
    "0001_replaceable.sql": "c238c7d226faa094c78eb914bec56a93a3c19a766f672b6d58d1a9bd51840ffe",
    "0002_delta_down.sql": "9d6bd54c528803ddf48ecbb77b3e11d2ed1c84e2260c42326bfc2280b09e75e6",
    "0002_delta_up.sql": "c9aaf788d372bca288577c0d80835120dc50184312231f70726fff527719d083",
    "0002_drop_replaceable.sql": "c77d3029d4411d804dae74f6c102c3fae18486606254b3bd2f871ec1702501b1",
    "0002_hardening.py": "a5056b9051b7b2185ad20895f08c22b664f247b2f4c98b67be41df185d082e43",
    "0002_replaceable.sql": "dc660144418d1eeb0bb1444de09ad96c236c52bcbb26eeec73aaaf8d6b876ced",
    "0003_delta_down.sql": "e6d838e9f795b6201c1a759e248c213817fe77592feb4fc7b4cfd485d4a5fa29",
    "0003_delta_up.sql": "fd5d7222bd0a180155cdcbc2415a74a25a4741445ed02bb13a1bdf30b8a4699a",
    "0003_drop_replaceable.sql": "c77d3029d4411d804dae74f6c102c3fae18486606254b3bd2f871ec1702501b1",
    "0003_propagation.py": "030836bae0448214f3e6f3bc605e4e1a22f1a9c1603a55b855de2d56c688a957",
    "0003_replaceable.sql": "9b30c269ced230105ad6b5a5169e2c4c0fa3fd4016a61b7679276e69087e6af8",
    "0004_delta_down.sql": "8dd6972e8e0cfc3002aa3804b31236517778af57e8a7e0165817e8454ecd82c1",
    "0004_delta_up.sql": "a04f7bb9d28c0a5fcbedd526065a3f12fefaa8f67f0c7879db407483e6b20392",
    "0004_drop_replaceable.sql": "c77d3029d4411d804dae74f6c102c3fae18486606254b3bd2f871ec1702501b1",
    "0004_receivers_adc_messages.py": "f4a2172fcc5d3aec031f596418088e10e6e82a8b4721e1730c9030f352e603f1",
    "0004_replaceable.sql": "3d330bc4499d428d8cf4a99a356dbfa2b4115b775cf8f2f894df5b1f3c3e45b5",
}


def test_released_revisions_are_unchanged():
    changed = [name for name, sha in RELEASED.items()
               if hashlib.sha256((VERSIONS / name).read_bytes()).hexdigest() != sha]
    assert changed == [], f"released migration files changed (make a new revision instead): {changed}"


def test_every_file_of_a_released_revision_is_pinned():
    released_revs = {name[:4] for name in RELEASED}
    files = {p.name for p in VERSIONS.iterdir() if p.is_file() and p.name[:4] in released_revs}
    assert files == set(RELEASED), f"unpinned files in released revisions: {sorted(files - set(RELEASED))}"
