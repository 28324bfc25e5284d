"""The vuln-scan gate's offline advisory database, built from the real records in tests/testdata/osv."""

from __future__ import annotations

import zipfile
from pathlib import Path

RECORDS = Path(__file__).resolve().parents[1] / "testdata" / "osv"


def build_osv_db(dest: Path) -> Path:
    """``dest`` in osv-scanner's offline layout (``osv-scalibr/<ecosystem>/all.zip``); returns ``dest``."""
    for ecosystem in sorted(p for p in RECORDS.iterdir() if p.is_dir()):
        archive = dest / "osv-scalibr" / ecosystem.name / "all.zip"
        archive.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for record in sorted(ecosystem.glob("*.json")):
                zipped.write(record, record.name)
    return dest
