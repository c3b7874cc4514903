"""Hostile probes, class 1: names that come from data (a video's sequence name, a manifest's episode
names, an encoder's name) never become a path outside the output, never collide, and no command
deletes a file it did not create; the views of one sequence must agree.

Every probe builds its own input, hashes every file that existed before, runs the command as a user
does, and asserts the exit code, the message and that nothing was lost.
"""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from hostile import TCN, copy, fails_cleanly, nothing_lost, snapshot
from tcn_robot.cli import main
from tcn_robot.data.episodes import is_safe_name, safe_name
from tcn_robot.data.importer import TRIM_TOLERANCE
from tcn_robot.video import write_video


def video(path: Path, frames: int = 6, size: int = 32, fps: float = 10, shade: int = 0) -> None:
    write_video(path, (np.full((size, size, 3), (shade + 9 * t) % 256, np.uint8) for t in range(frames)), fps)


def source(folder: Path, sequences, views: int = 2, **kw) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, seq in enumerate(sequences):
        for v in range(views):
            video(folder / f"{seq}_view{v}.mp4", shade=17 * k + v, **kw)
    return folder


@pytest.fixture
def work(tmp_path):
    """A user's folder: their own file beside the dataset the import writes."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "mine.txt").write_text("the user's own file")
    (tmp_path / "outside.txt").write_text("above the user's folder")
    return home


def imported(out: Path) -> dict[str, str]:
    """Episode folder -> the sequence it holds."""
    return {p.name: json.loads((p / "meta.json").read_text())["sequence"] for p in out.iterdir() if (p / "meta.json").is_file()}


def without_manifest(files: dict) -> dict:
    """A snapshot less the dataset's manifest, which an import that adds episodes rewrites."""
    return {f: h for f, h in files.items() if not f.endswith("/manifest.json")}


def only_inside(tmp_path: Path, out: Path, before: set) -> None:
    """No file appeared anywhere but inside ``out``."""
    now = {str(p) for p in tmp_path.rglob("*")}
    stray = [p for p in now - before if not Path(p).is_relative_to(out) and "src" not in Path(p).parts]
    assert not stray, stray


# ----------------------------------------------------------------- sequence names from file names
REFUSED = ["..", ".", "...", "-.", ".-", "manifest.json"]
RENAMED = {".hidden": "hidden", ".cache": "cache", "-rf": "rf", "a b": "a_b", "a:b": "a_b", "a\\b": "a_b", "çà": "__",
           "$(touch pwned)": "__touch_pwned_", "*": "_", "~": "_", "%2e%2e": "_2e_2e", "tab\there": "tab_here",
           "new\nline": "new_line", ".. ": "_", "x" * 200: "x" * 128, "..a": "a", "a..b": "a..b", "CON": "CON", "ep 1;rm -rf ~": "ep_1_rm_-rf__"}


@pytest.mark.parametrize("name", REFUSED)
def test_a_sequence_name_with_nothing_usable_is_refused_and_nothing_outside_is_touched(tmp_path, work, capsys, name):
    src = source(tmp_path / "src", [name, "ok"])
    out = work / "dataset"
    before, files = snapshot(tmp_path), {str(p) for p in tmp_path.rglob("*")}
    assert main(["import-videos", str(src), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"sequence {name!r}" in err and "Traceback" not in err
    assert imported(out) == {"ok": "ok"}
    nothing_lost(before)
    only_inside(tmp_path, out, files)


@pytest.mark.parametrize("name", list(RENAMED))
def test_a_sequence_name_is_made_safe_and_the_import_says_so(tmp_path, work, capsys, name):
    src = source(tmp_path / "src", [name, "ok"])
    out = work / "dataset"
    before, files = snapshot(tmp_path), {str(p) for p in tmp_path.rglob("*")}
    assert main(["import-videos", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert imported(out) == {RENAMED[name]: name, "ok": "ok"}
    assert all(is_safe_name(p.name) for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    if RENAMED[name] != name:
        assert f"sequence {name!r} imported as episode {RENAMED[name]!r}" in printed
    assert not (out / ".cache" / "meta.json").exists()
    nothing_lost(before)
    only_inside(tmp_path, out, files)


def test_names_that_clean_to_one_name_each_get_their_own_episode(tmp_path, work, capsys):
    src = source(tmp_path / "src", ["a b", "a_b", "a:b"])
    out = work / "dataset"
    assert main(["import-videos", str(src), "--out", str(out)]) == 0
    assert imported(out) == {"a_b": "a_b", "a_b-2": "a b", "a_b-3": "a:b"}
    before = without_manifest(snapshot(tmp_path))
    source(src, ["a;b"])  # a fourth that cleans to the same name, added later
    assert main(["import-videos", str(src), "--out", str(out)]) == 0
    assert imported(out) == {"a_b": "a_b", "a_b-2": "a b", "a_b-3": "a:b", "a_b-4": "a;b"}
    assert "1 sequences imported" in capsys.readouterr().out
    nothing_lost(before)


def test_importing_the_same_source_again_adds_nothing_and_changes_nothing(tmp_path, work, capsys):
    src = source(tmp_path / "src", ["one", "two words"])
    out = work / "dataset"
    assert main(["import-videos", str(src), "--out", str(out)]) == 0
    before = snapshot(tmp_path)
    assert main(["import-videos", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "0 sequences imported" in printed and "2 already there" in printed
    nothing_lost(before)


@pytest.mark.parametrize("planted", [".", "..", ".cache", "manifest.json"])
def test_a_hostile_sequence_added_to_a_source_leaves_the_dataset_imported_before_whole(tmp_path, work, capsys, planted):
    src = source(tmp_path / "src", ["first", "second"])
    out = work / "dataset"
    assert main(["import-videos", str(src), "--out", str(out)]) == 0
    before = without_manifest(snapshot(tmp_path))
    source(src, [planted])
    assert main(["import-videos", str(src), "--out", str(out)]) == 0
    nothing_lost(before)
    assert {"first", "second"} <= set(imported(out))


def test_a_source_of_nothing_but_dot_dot_leaves_everything_beside_the_output(tmp_path, work, capsys):
    src = source(tmp_path / "src", [".."])
    out = work / "dataset"
    before = snapshot(tmp_path)
    main(["import-videos", str(src), "--out", str(out)])
    assert "Traceback" not in capsys.readouterr().err
    nothing_lost(before)
    assert (work / "mine.txt").read_text() == "the user's own file"


def test_a_file_name_that_is_not_utf8_is_refused_with_a_line(tmp_path, work, capsys):
    src = source(tmp_path / "src", ["ok"])
    bad = os.fsencode(src) + b"/caf\xe9_view0.mp4"
    shutil.copy(src / "ok_view0.mp4", bad)
    out = work / "dataset"
    before = snapshot(tmp_path)
    assert main(["import-videos", str(src), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "not valid UTF-8" in err and "Traceback" not in err
    assert imported(out) == {"ok": "ok"}
    nothing_lost(before)


def test_strict_refuses_a_hostile_name_in_one_line_before_writing_an_episode(tmp_path, work, capsys):
    src = source(tmp_path / "src", ["..", "ok"])
    out = work / "dataset"
    before = snapshot(tmp_path)
    fails_cleanly(capsys, ["import-videos", str(src), "--out", str(out), "--strict"], "'..'")
    nothing_lost(before)
    assert not imported(out) if out.exists() else True


# ----------------------------------------------------------------- views of one sequence must agree
def test_views_at_different_frame_rates_are_refused_naming_the_sequence(tmp_path, work, capsys):
    src = tmp_path / "src"
    src.mkdir()
    video(src / "s_view0.mp4", fps=10)
    video(src / "s_view1.mp4", fps=15)
    source(src, ["ok"])
    out = work / "dataset"
    assert main(["import-videos", str(src), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "sequence 's'" in err and "frame rates" in err and imported(out) == {"ok": "ok"}


@pytest.mark.parametrize("trim", [False, True])
def test_views_of_unequal_length_need_trim_and_trim_has_a_limit(tmp_path, work, capsys, trim):
    src = tmp_path / "src"
    src.mkdir()
    video(src / "near_view0.mp4", frames=40)
    video(src / "near_view1.mp4", frames=38)  # within TRIM_TOLERANCE
    video(src / "far_view0.mp4", frames=40)
    video(src / "far_view1.mp4", frames=40 - TRIM_TOLERANCE[0] - 3)  # beyond it
    out = work / "dataset"
    assert main(["import-videos", str(src), "--out", str(out), *(["--trim"] if trim else [])]) == 0
    err = capsys.readouterr().err
    assert "sequence 'far'" in err and "Traceback" not in err
    assert imported(out) == ({"near": "near"} if trim else {})
    if trim:
        assert json.loads((out / "near" / "meta.json").read_text())["num_frames"] == 38


@pytest.mark.parametrize("case", ["sizes", "gap", "empty", "not-a-video", "one-frame"])
def test_a_sequence_whose_views_cannot_agree_is_refused_with_a_line(tmp_path, work, capsys, case):
    src = tmp_path / "src"
    src.mkdir()
    if case == "sizes":
        video(src / "s_view0.mp4", size=32)
        video(src / "s_view1.mp4", size=48)
    elif case == "gap":
        video(src / "s_view0.mp4")
        video(src / "s_view2.mp4")
    elif case == "empty":
        video(src / "s_view0.mp4")
        (src / "s_view1.mp4").write_bytes(b"")
    elif case == "not-a-video":
        video(src / "s_view0.mp4")
        (src / "s_view1.mp4").write_text("not a video")
    else:
        video(src / "s_view0.mp4", frames=1)
        video(src / "s_view1.mp4", frames=1)
    source(src, ["ok"])
    out = work / "dataset"
    before = snapshot(tmp_path)
    assert main(["import-videos", str(src), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert ("'s'" in err or "s_view" in err) and "Traceback" not in err
    assert imported(out) == {"ok": "ok"}
    nothing_lost(before)


# ----------------------------------------------------------------- episode names from a manifest
MANIFEST_NAMES = ["../tcn", "/etc", "ep00000/../../tcn", ".", "..", ".cache", "", 5, None, ["ep00000"], "ep00000\u0000"]


@pytest.mark.parametrize("name", MANIFEST_NAMES, ids=repr)
def test_a_manifest_naming_an_episode_outside_the_dataset_is_refused_by_every_reader(made, tmp_path, capsys, name):
    data = copy(made / "data", tmp_path / "data")
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["episodes"][1]["name"] = name
    (data / "manifest.json").write_text(json.dumps(manifest))
    before = snapshot(tmp_path, made)
    fails_cleanly(capsys, ["train-tcn", "--data", str(data), "--out", str(tmp_path / "run"), *TCN], "manifest.json")
    fails_cleanly(capsys, ["evaluate", "--baseline", "pixels", "--data", str(data), "--out", str(tmp_path / "ev")], "manifest.json")
    assert main(["inspect", str(data), "--strict"]) == 1
    assert "manifest.json" in capsys.readouterr().out
    nothing_lost(before)
    assert not (tmp_path / "run").exists() and not (tmp_path / "ev").exists()


def test_a_manifest_listing_an_episode_twice_is_refused(made, tmp_path, capsys):
    data = copy(made / "data", tmp_path / "data")
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["episodes"].append(dict(manifest["episodes"][0]))
    (data / "manifest.json").write_text(json.dumps(manifest))
    fails_cleanly(capsys, ["train-tcn", "--data", str(data), "--out", str(tmp_path / "run"), *TCN], "manifest.json", "twice")


# ----------------------------------------------------------------- an encoder's name
@pytest.mark.parametrize("name", ["..", ".", "...", "", "~x"])
def test_an_encoders_name_never_becomes_a_folder_outside_the_report(made, tmp_path, capsys, name):
    out = tmp_path / "ev"
    before = snapshot(made)
    spec = f"{name}={made / 'tcn/checkpoints/last.pt'}"
    assert main(["evaluate", "--checkpoint", spec, "--data", str(made / "data"), "--out", str(out),
                 "--demo", str(made / "data/ep00000")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev"]
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert len(folders) == 1 and is_safe_name(folders[0].name)
    nothing_lost(before)


def test_safe_name_agrees_with_is_safe_name():
    for text in [*REFUSED, *RENAMED, *[n for n in MANIFEST_NAMES if isinstance(n, str)]]:
        cleaned = safe_name(text)
        assert cleaned == "" or is_safe_name(cleaned)
        assert not is_safe_name(text) or cleaned == text
