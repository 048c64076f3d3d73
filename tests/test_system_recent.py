"""The system's recent documents: the freedesktop ``recently-used.xbel`` writer, tested as GTK
would read the file (namespaces, URIs, times), and the guard that keeps every failure silent."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from engine import system_recent
from engine.system_recent import (
    BOOKMARK_NS,
    METADATA_OWNER,
    MIME_NS,
    RecentResult,
    add_recent,
    add_to_xbel,
)

T0 = dt.datetime(2026, 12, 2, 10, 0, 0, tzinfo=dt.UTC)
T1 = dt.datetime(2026, 12, 2, 11, 30, 0, 250000, tzinfo=dt.UTC)

OTHER_APPS = """<?xml version="1.0" encoding="UTF-8"?>
<xbel version="1.0"
      xmlns:bookmark="http://www.freedesktop.org/standards/desktop-bookmarks"
      xmlns:mime="http://www.freedesktop.org/standards/shared-mime-info"
>
  <!-- written by GLib -->
  <bookmark href="file:///home/ana/notes.txt" added="2026-11-01T09:00:00.000000Z"
            modified="2026-11-01T09:00:00.000000Z" visited="2026-11-01T09:00:00.000000Z">
    <title>Notes</title>
    <info>
      <metadata owner="http://freedesktop.org">
        <mime:mime-type type="text/plain"/>
        <bookmark:groups><bookmark:group>gedit</bookmark:group></bookmark:groups>
        <bookmark:applications>
          <bookmark:application name="gedit" exec="&apos;gedit %u&apos;"
                                modified="2026-11-01T09:00:00.000000Z" count="3"/>
        </bookmark:applications>
      </metadata>
    </info>
  </bookmark>
</xbel>
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder whose name has a space and non-ASCII letters, as users' folders do."""
    path = tmp_path / "Mes projets ünd 設計"
    path.mkdir()
    return path


def bookmarks(xbel: Path) -> dict[str, ET.Element]:
    return {b.get("href"): b for b in ET.parse(xbel).getroot().findall("bookmark")}


def convas_app(bookmark: ET.Element) -> ET.Element:
    apps = bookmark.findall(f"info/metadata[@owner='{METADATA_OWNER}']/{{{BOOKMARK_NS}}}applications/"
                            f"{{{BOOKMARK_NS}}}application[@name='Convas']")
    assert len(apps) == 1
    return apps[0]


def test_a_new_list_holds_the_design_as_glib_reads_it(folder: Path, tmp_path: Path) -> None:
    xbel = tmp_path / "data" / "recently-used.xbel"
    design = folder / "my net.convas"
    assert add_to_xbel(xbel, design, now=T0) is RecentResult.ADDED

    text = xbel.read_text(encoding="utf-8")
    # The prefixes GLib writes, not ElementTree's ns0/ns1.
    assert 'xmlns:bookmark="http://www.freedesktop.org/standards/desktop-bookmarks"' in text
    assert "<mime:mime-type" in text and "<bookmark:application " in text and "ns0" not in text
    (uri, bookmark), = bookmarks(xbel).items()
    assert uri == design.as_uri()
    assert uri.endswith("/Mes%20projets%20%C3%BCnd%20%E8%A8%AD%E8%A8%88/my%20net.convas")  # UTF-8, percent-encoded
    assert bookmark.get("added") == bookmark.get("modified") == bookmark.get("visited") == "2026-12-02T10:00:00.000000Z"
    mime = bookmark.find(f"info/metadata/{{{MIME_NS}}}mime-type")
    assert mime is not None and mime.get("type") == "application/x-convas"
    app = convas_app(bookmark)
    assert app.get("exec") == "'convas %u'" and app.get("count") == "1"
    assert app.get("modified") == "2026-12-02T10:00:00.000000Z"


def test_adding_again_updates_times_and_count_instead_of_a_second_entry(folder: Path, tmp_path: Path) -> None:
    xbel = tmp_path / "recently-used.xbel"
    design = folder / "net.convas"
    add_to_xbel(xbel, design, now=T0)
    assert add_to_xbel(xbel, design, now=T1) is RecentResult.UPDATED

    (bookmark,) = bookmarks(xbel).values()
    assert bookmark.get("added") == "2026-12-02T10:00:00.000000Z"
    assert bookmark.get("modified") == bookmark.get("visited") == "2026-12-02T11:30:00.250000Z"
    assert convas_app(bookmark).get("count") == "2"
    assert len(bookmark.findall(f"info/metadata/{{{MIME_NS}}}mime-type")) == 1


def test_other_applications_entries_are_kept(folder: Path, tmp_path: Path) -> None:
    xbel = tmp_path / "recently-used.xbel"
    xbel.write_text(OTHER_APPS, encoding="utf-8")
    add_to_xbel(xbel, folder / "a.convas", now=T0)

    marks = bookmarks(xbel)
    assert set(marks) == {"file:///home/ana/notes.txt", (folder / "a.convas").as_uri()}
    notes = marks["file:///home/ana/notes.txt"]
    assert notes.findtext("title") == "Notes"
    assert notes.get("modified") == "2026-11-01T09:00:00.000000Z"
    gedit = notes.find(f"info/metadata/{{{BOOKMARK_NS}}}applications/{{{BOOKMARK_NS}}}application")
    assert gedit is not None and gedit.get("exec") == "'gedit %u'" and gedit.get("count") == "3"
    assert notes.find(f"info/metadata/{{{BOOKMARK_NS}}}groups/{{{BOOKMARK_NS}}}group").text == "gedit"
    assert "<!-- written by GLib -->" in xbel.read_text(encoding="utf-8")


def test_a_file_another_app_listed_gets_convas_beside_that_app(tmp_path: Path) -> None:
    xbel = tmp_path / "recently-used.xbel"
    notes = Path("/home/ana/notes.txt")
    xbel.write_text(OTHER_APPS, encoding="utf-8")
    assert add_to_xbel(xbel, notes, now=T0) is RecentResult.UPDATED

    (bookmark,) = bookmarks(xbel).values()
    names = [a.get("name") for a in bookmark.iter(f"{{{BOOKMARK_NS}}}application")]
    assert names == ["gedit", "Convas"]
    assert [m.get("type") for m in bookmark.iter(f"{{{MIME_NS}}}mime-type")] == ["text/plain"]  # not ours to change


def test_an_imported_keras_file_is_not_listed_as_a_design(tmp_path: Path) -> None:
    xbel = tmp_path / "recently-used.xbel"
    add_to_xbel(xbel, tmp_path / "model.keras", now=T0)
    add_to_xbel(xbel, tmp_path / "model.json", now=T0)
    types = {Path(uri).name: b.find(f"info/metadata/{{{MIME_NS}}}mime-type").get("type")
             for uri, b in bookmarks(xbel).items()}
    assert types == {"model.keras": "application/octet-stream", "model.json": "application/json"}


@pytest.mark.parametrize("text", ["<xbel version='1.0'><bookmark href='x'>", "not xml at all",
                                  "<?xml version='1.0'?><html/>"])
def test_a_malformed_list_is_left_untouched(tmp_path: Path, text: str) -> None:
    xbel = tmp_path / "recently-used.xbel"
    xbel.write_text(text, encoding="utf-8")
    assert add_to_xbel(xbel, tmp_path / "a.convas", now=T0) is RecentResult.UNREADABLE
    assert xbel.read_text(encoding="utf-8") == text
    assert [p.name for p in tmp_path.iterdir()] == ["recently-used.xbel"]  # no temporary file left


def test_the_list_is_capped_by_dropping_the_least_recent(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(system_recent, "MAX_BOOKMARKS", 3)
    xbel = tmp_path / "recently-used.xbel"
    for hour in range(4):
        add_to_xbel(xbel, tmp_path / f"d{hour}.convas", now=T0 + dt.timedelta(hours=hour))
    assert sorted(Path(u).name for u in bookmarks(xbel)) == ["d1.convas", "d2.convas", "d3.convas"]


def test_add_recent_writes_to_xdg_data_home_and_never_raises(tmp_path: Path, folder: Path, monkeypatch) -> None:
    monkeypatch.setattr(system_recent.sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    assert add_recent(tmp_path / "b.convas") is RecentResult.ADDED
    assert (tmp_path / "b.convas").as_uri() in bookmarks(folder / "recently-used.xbel")

    (folder / "recently-used.xbel").unlink()
    (folder / "recently-used.xbel").mkdir()  # cannot be read or replaced
    assert add_recent(tmp_path / "b.convas") in (RecentResult.UNREADABLE, RecentResult.FAILED)

    monkeypatch.setattr(system_recent.sys, "platform", "win32")  # no shell32 here: the failure stays quiet
    assert add_recent(tmp_path / "b.convas") is RecentResult.FAILED
