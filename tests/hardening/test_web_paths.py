"""Issue 18, item 3: the web routes never leave their folders, and the writers of outboxes
and reports never write through a link.

A link planted in an outbox or in the reports folder (a symlink to a file or to a folder, the
outbox or ``quality/`` itself a link, a hard link to a file elsewhere) made the report routes
serve what it led to (the index, ``/etc/passwd``), and made the receipt, notice, report,
summary and certificate writers write into it. The link tests here failed on the code before
the fix (``childindex.safe_paths``); the traversal ones pin what already held.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

from childindex.errors import UnsafePath
from childindex.notices.files import notice_paths, write_notices
from childindex.reports import build_report
from childindex.reports.build import report_dir, report_path
from childindex.reports.summary import summary_path, write_summary
from childindex.retention.run import run_retention
from childindex.safe_paths import read_inside, write_inside
from tests.helpers import ORG
from tests.orchestration.test_webui import auth, client  # noqa: F401 - fixtures
from tests.test_receipts import receipt

NIGHT = date(2026, 1, 1)
SECRET = b"SQLite format 3\x00 index of children: secret-child-Z9"
PASSWD = Path("/etc/passwd")
RECEIPT = "health_2026-01-01.csv.1234abcd.receipt.json"


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    """A fake index database outside every served folder (on the same file system, so it
    can be hard-linked)."""
    path = tmp_path / "elsewhere" / "index.sqlite"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


@pytest.fixture()
def viewer(settings, auth, client):  # noqa: F811 - the imported fixtures
    client.cookies.set("_token", auth("viewer"))
    return client


def _refused(web, url: str, *secrets: bytes) -> None:
    response = web.get(f"/childindex/reports/{url}")
    assert response.status_code == 404, url
    for secret in secrets:
        assert secret not in response.content, url
    assert b"elsewhere" not in response.content and b"/etc" not in response.content, url


def _target(outside: Path, which: str) -> tuple[Path, bytes]:
    return (outside, SECRET) if which == "index" else (PASSWD, b"root:")


# ----------------------------------------------------------------------------- web routes


@pytest.mark.parametrize("which", ["index", "passwd"])
def test_a_symlinked_receipt_is_not_served(settings, viewer, outside, which) -> None:
    target, secret = _target(outside, which)
    (settings.outbox(ORG["health"]) / RECEIPT).symlink_to(target)
    (settings.outbox(ORG["health"]) / RECEIPT.replace(".json", ".txt")).symlink_to(target)
    _refused(viewer, f"receipts/{ORG['health']}/{RECEIPT}", secret)
    _refused(viewer, f"receipts/{ORG['health']}/{RECEIPT.replace('.json', '.txt')}", secret)


@pytest.mark.parametrize("which", ["index", "passwd"])
def test_a_symlinked_night_report_or_index_page_is_not_served(settings, viewer, outside, which) -> None:
    target, secret = _target(outside, which)
    report_dir(settings).mkdir(parents=True)
    report_path(settings, NIGHT).symlink_to(target)
    (report_dir(settings) / "index.html").symlink_to(target)
    _refused(viewer, f"night-{NIGHT}.html", secret)
    _refused(viewer, "index.html", secret)
    _refused(viewer, "", secret)


def test_hard_links_to_files_elsewhere_are_not_served(settings, viewer, outside) -> None:
    os.link(outside, settings.outbox(ORG["health"]) / RECEIPT)
    report_dir(settings).mkdir(parents=True)
    os.link(outside, report_path(settings, NIGHT))
    _refused(viewer, f"receipts/{ORG['health']}/{RECEIPT}", SECRET)
    _refused(viewer, f"night-{NIGHT}.html", SECRET)


def test_a_symlinked_outbox_or_quality_folder_is_not_served(settings, viewer, tmp_path) -> None:
    # Real files, in a folder elsewhere that a link in the served tree points to.
    elsewhere = tmp_path / "elsewhere-folder"
    elsewhere.mkdir()
    (elsewhere / RECEIPT).write_bytes(SECRET)
    (elsewhere / f"night-{NIGHT}.html").write_bytes(SECRET)
    (elsewhere / "index.html").write_bytes(SECRET)
    outbox = settings.outbox(ORG["health"])
    outbox.rmdir()
    outbox.symlink_to(elsewhere, target_is_directory=True)
    report_dir(settings).symlink_to(elsewhere, target_is_directory=True)
    _refused(viewer, f"receipts/{ORG['health']}/{RECEIPT}", SECRET)
    _refused(viewer, f"night-{NIGHT}.html", SECRET)
    _refused(viewer, "index.html", SECRET)


def test_real_files_are_still_served(settings, viewer) -> None:
    (settings.outbox(ORG["health"]) / RECEIPT).write_text('{"ok": true}')
    build_report(settings, NIGHT)
    receipt_response = viewer.get(f"/childindex/reports/receipts/{ORG['health']}/{RECEIPT}")
    assert receipt_response.status_code == 200 and receipt_response.json() == {"ok": True}
    assert viewer.get(f"/childindex/reports/night-{NIGHT}.html").status_code == 200
    assert viewer.get("/childindex/reports/").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "receipts/{org}/..%2F..%2F..%2Findex.sqlite",
        "receipts/{org}/%2E%2E%2F%2E%2E%2Fx.receipt.json",
        "receipts/{org}/%2Fetc%2Fpasswd",
        "receipts/{org}/%2Fetc%2Fx.receipt.json",
        "receipts/{org}/..%5C..%5Cx.receipt.json",
        "receipts/{org}/x.receipt.json%00.txt",
        "receipts/%2E%2E/{org}/x.receipt.json",
        "receipts/..%2F{org}/x.receipt.json",
        "night-..%2F..%2Findex.html",
        "%2E%2E/%2E%2E/index.sqlite",
        "..%2F..%2Fetc%2Fpasswd",
        "/etc/passwd",
    ],
)
def test_traversal_and_encoded_slashes_get_404(settings, viewer, url) -> None:
    (settings.data_dir / "x.receipt.json").write_bytes(SECRET)
    (settings.data_dir / "index.html").write_bytes(SECRET)
    _refused(viewer, url.format(org=ORG["health"]), SECRET, b"root:")


# ----------------------------------------------------------------------------- writers


def test_the_receipt_writer_refuses_a_link_in_the_outbox(settings, outside) -> None:
    outbox = settings.outbox(ORG["health"])
    r = receipt()
    stem = f"{r.file_name}.{r.sha256[:8]}.receipt"
    (outbox / f"{stem}.txt").symlink_to(outside)
    with pytest.raises(UnsafePath, match=r"\.receipt\.txt: it is a link"):
        r.write(outbox)
    assert outside.read_bytes() == SECRET
    # A link that leads nowhere yet, under a receipt's name: nothing is created at its end.
    other = receipt(sha256="f" * 64)
    (outbox / f"{other.file_name}.ffffffff.receipt.json").symlink_to(outside.with_name("new.json"))
    with pytest.raises(UnsafePath, match=r"\.receipt\.json: it is a link"):
        other.write(outbox)
    assert not outside.with_name("new.json").exists()


def test_the_receipt_writer_refuses_a_symlinked_outbox(settings, tmp_path) -> None:
    elsewhere = tmp_path / "elsewhere-folder"
    elsewhere.mkdir()
    outbox = settings.outbox(ORG["health"])
    outbox.rmdir()
    outbox.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafePath, match="is a link or not a folder"):
        receipt().write(outbox)
    assert list(elsewhere.iterdir()) == []


def test_the_notice_writer_refuses_links_in_the_outbox(settings, tmp_path) -> None:
    outbox = settings.outbox(ORG["health"])
    org = {"code": ORG["health"], "name": "Test"}
    notice = {"notice_id": "a" * 20, "kind": "notice", "references": ["H1"], "involvements": []}
    # Another organisation's notices, under this one's name: they must not be merged in.
    other = settings.outbox(ORG["education"])
    write_notices(other, {"code": ORG["education"], "name": "Other"}, NIGHT, [notice])
    other_json = notice_paths(other, NIGHT)[0]
    before = other_json.read_bytes()
    json_path, _ = notice_paths(outbox, NIGHT)
    json_path.parent.mkdir()
    json_path.symlink_to(other_json)
    with pytest.raises(UnsafePath, match="is a link"):
        write_notices(outbox, org, NIGHT, [{**notice, "notice_id": "b" * 20}])
    assert other_json.read_bytes() == before
    # The notices folder itself a link to a folder elsewhere.
    json_path.unlink()
    json_path.parent.rmdir()
    elsewhere = tmp_path / "elsewhere-folder"
    elsewhere.mkdir()
    json_path.parent.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafePath, match="notices: it is a link or not a folder"):
        write_notices(outbox, org, NIGHT, [notice])
    assert list(elsewhere.iterdir()) == []


def test_report_and_summary_writers_refuse_links(settings, outside) -> None:
    report_dir(settings).mkdir(parents=True)
    (report_dir(settings) / "index.html").symlink_to(outside)
    with pytest.raises(UnsafePath, match=r"quality/index\.html: it is a link"):
        build_report(settings, NIGHT)
    summary_path(settings, NIGHT).symlink_to(outside)
    with pytest.raises(UnsafePath, match=r"night-2026-01-01\.json: it is a link"):
        write_summary(settings, NIGHT, {"night": NIGHT.isoformat()})
    assert outside.read_bytes() == SECRET


def test_the_report_writer_refuses_a_hard_link(settings, outside) -> None:
    report_dir(settings).mkdir(parents=True)
    os.link(outside, report_path(settings, NIGHT))
    with pytest.raises(UnsafePath, match="hard link"):
        build_report(settings, NIGHT)
    assert outside.read_bytes() == SECRET


def test_the_retention_certificate_is_never_written_through_a_link(settings, outside, tmp_path) -> None:
    today = date(2026, 1, 2)
    folder = settings.reports_dir / "retention"
    folder.mkdir()
    (folder / f"certificate-{today}.json").symlink_to(outside)
    with pytest.raises(UnsafePath, match="is a link"):
        run_retention(settings, today)
    assert outside.read_bytes() == SECRET
    # The folder itself a link to a folder elsewhere.
    (folder / f"certificate-{today}.json").unlink()
    folder.rmdir()
    elsewhere = tmp_path / "elsewhere-folder"
    elsewhere.mkdir()
    folder.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafePath, match="retention: it is a link or not a folder"):
        run_retention(settings, today)
    assert list(elsewhere.iterdir()) == []


# ----------------------------------------------------------------------------- the helper


def test_the_configured_root_may_be_a_link_but_nothing_below_it(tmp_path) -> None:
    real = tmp_path / "volume"
    real.mkdir()
    root = tmp_path / "reports"
    root.symlink_to(real, target_is_directory=True)  # an operator's mount: allowed
    write_inside(root, root / "a" / "b.json", "{}")
    assert read_inside(root, root / "a" / "b.json") == b"{}"
    assert (real / "a").stat().st_mode & 0o777 == 0o750
    assert sorted(p.name for p in (real / "a").iterdir()) == ["b.json"]  # no temporary file left
    for bad in (root / ".." / "x", tmp_path / "x", root, Path("/etc/passwd")):
        with pytest.raises(UnsafePath):
            read_inside(root, bad)
        with pytest.raises(UnsafePath):
            write_inside(root, bad, "x")
    with pytest.raises(FileNotFoundError):
        read_inside(root, root / "a" / "missing.json")


def test_a_fifo_under_a_served_name_is_refused_without_waiting(tmp_path) -> None:
    os.mkfifo(tmp_path / "x.receipt.json")
    with pytest.raises(UnsafePath, match="not a regular file"):
        read_inside(tmp_path, tmp_path / "x.receipt.json")
    with pytest.raises(UnsafePath, match="not a regular file"):
        write_inside(tmp_path, tmp_path / "x.receipt.json", json.dumps({}))
