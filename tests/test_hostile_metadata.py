"""Hostile probes, classes 6 and 7: damaged metadata, and a caller's folders.

Wrong types, impossible values and deep nesting in meta.json, manifest.json, states.npz, run marks,
eval.json and a run's config.yaml give ``inspect --strict`` problems and every command one clear
line, never a traceback. A folder the user names for scratch (``--cache-dir``) receives only files
the command marks as its own, and no user file is overwritten.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from hostile import RL, TCN, copy, fails_cleanly, nothing_lost, snapshot
from tcn_robot.cli import main

DEEP = "[" * 100_000 + "]" * 100_000

META = {  # what to set in ep00001's meta.json
    "num_views as text": {"num_views": "2"}, "num_frames fractional": {"num_frames": 20.5}, "fps as text": {"fps": "20"},
    "image_size as text": {"image_size": "32x32"}, "image_size one number": {"image_size": [32]},
    "has_states as text": {"has_states": "yes"}, "embodiment a number": {"embodiment": 5},
    "view_embodiments a word": {"view_embodiments": "human"}, "demonstrator a list": {"demonstrator": []},
    "is_success as text": {"is_success": "no"}, "fraction a word": {"fraction_in_bowl": "all"},
    "fps zero": {"fps": 0}, "fps negative": {"fps": -5}, "fps huge": {"fps": 1e9}, "image_size zero": {"image_size": [0, 0]},
    "image_size huge": {"image_size": [100000, 100000]}, "no views": {"num_views": 0}, "a thousand views": {"num_views": 1000},
    "one frame": {"num_frames": 1}, "10^12 frames": {"num_frames": 10**12}, "format 99": {"format": 99},
    "num_views true": {"num_views": True},
}
RAW_META = {"deep nesting": DEEP, "a list": "[1, 2]", "not utf8": b"\xff\xfe{}", "empty": "", "truncated": '{"format": 1, "num_',
            "NaN fps": None}


def _damage_meta(data: Path, case: str) -> Path:
    path = data / "ep00001" / "meta.json"
    if case in META:
        meta = json.loads(path.read_text())
        meta.update(META[case])
        path.write_text(json.dumps(meta))
    elif case == "NaN fps":
        path.write_text(path.read_text().replace('"fps": 20', '"fps": NaN'))
    else:
        raw = RAW_META[case]
        path.write_bytes(raw if isinstance(raw, bytes) else raw.encode())
    return path


@pytest.mark.parametrize("case", [*META, *RAW_META])
def test_a_damaged_meta_json_is_a_problem_for_inspect_and_one_line_for_a_command(made, tmp_path, capsys, case):
    data = copy(made / "data", tmp_path / "data")
    path = _damage_meta(data, case)
    before = snapshot(data)
    capsys.readouterr()
    assert main(["inspect", str(data), "--strict"]) == 1
    out = capsys.readouterr()
    assert str(path) in out.out and "Traceback" not in out.err
    fails_cleanly(capsys, ["train-rl", "--out", str(tmp_path / "rl"), "--reward", "tcn", "--encoder", "pixels",
                           "--demo", str(data / "ep00001"), "--steps", "32", *RL], "meta.json")
    nothing_lost(before)
    assert not (tmp_path / "rl").exists()


@pytest.mark.parametrize("content", [DEEP, "{", '{"episodes": {"ep00000": 1}}', '{"episodes": [], "settings": [1]}',
                                     '{"episodes": [{"name": "ep00000", "x": NaN}]}', "[]", '"a string"'], ids=range(7))
def test_a_damaged_manifest_is_a_problem_for_inspect_and_one_line_for_a_command(made, tmp_path, capsys, content):
    data = copy(made / "data", tmp_path / "data")
    (data / "manifest.json").write_text(content)
    capsys.readouterr()
    assert main(["inspect", str(data), "--strict"]) == 1
    out = capsys.readouterr()
    assert "manifest.json" in out.out and "Traceback" not in out.err
    fails_cleanly(capsys, ["train-tcn", "--data", str(data), "--out", str(tmp_path / "r"), *TCN], "manifest.json")


@pytest.mark.parametrize("content", [b"not an npz", "pickled", "zero-d"])
def test_damaged_states_are_a_problem_for_inspect(made, tmp_path, capsys, content):
    data = copy(made / "data", tmp_path / "data")
    states = data / "ep00002" / "states.npz"
    if content == "pickled":
        np.savez(states, tilt=np.array([{"a": 1}] * 21, dtype=object))
    elif content == "zero-d":
        np.savez(states, tilt=np.array(3.0))
    else:
        states.write_bytes(content)
    capsys.readouterr()
    assert main(["inspect", str(data), "--strict"]) == 1
    assert "ep00002/states.npz" in capsys.readouterr().out


@pytest.mark.parametrize("mark", [DEEP, '{"kind": ["train-tcn"]}', '{"kind": "evil"}', "{", '{"kind": "train-tcn", "inputs": 5, "resumes": 7}',
                                  "null"], ids=range(6))
def test_a_damaged_run_mark_is_one_line_for_every_command_that_reads_it(made, tmp_path, capsys, mark):
    run = copy(made / "tcn", tmp_path / "tcn")
    (run / ".tcn-robot.json").write_text(mark)
    before = snapshot(run)
    if mark.startswith('{"kind": "train-tcn"'):  # a mark that names its command, with damaged details: the run resumes
        assert main(["train-tcn", "--data", str(made / "data"), "--out", str(run), "--resume", "--steps", "6"]) == 0
        return
    fails_cleanly(capsys, ["train-tcn", "--data", str(made / "data"), "--out", str(run), "--resume", "--steps", "6"], run,
                  "not made by tcn-robot")
    nothing_lost(before)


def test_a_damaged_evaluation_history_is_one_line_on_resume(made, tmp_path, capsys):
    run = copy(made / "rl", tmp_path / "rl")
    for content in (DEEP, '[{"steps": "many"}]', "{"):
        (run / "eval.json").write_text(content)
        fails_cleanly(capsys, ["train-rl", "--out", str(run), "--resume", "--steps", "96"], "eval.json")


@pytest.mark.parametrize("content", ["a: [" * 5000, "train: {steps: [1, 2}", "model: {width: many}", "evil: 1"], ids=range(4))
def test_a_damaged_run_config_is_one_line_on_resume(made, tmp_path, capsys, content):
    run = copy(made / "tcn", tmp_path / "tcn")
    (run / "config.yaml").write_text(content)
    fails_cleanly(capsys, ["train-tcn", "--data", str(made / "data"), "--out", str(run), "--resume", "--steps", "6"], "config.yaml")


# ----------------------------------------------------------------- 7. a caller's folders
@pytest.mark.parametrize("command", ["train-tcn", "evaluate", "embed"])
def test_a_cache_dir_holding_the_users_files_is_refused_and_left_alone(made, tmp_path, capsys, command):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "ep00000.npy").write_bytes(b"my own array")
    (mine / "ep00000.json").write_text("my own notes")
    before = snapshot(mine)
    argv = {"train-tcn": ["train-tcn", "--data", str(made / "data"), "--out", str(tmp_path / "r"), *TCN],
            "evaluate": ["evaluate", "--baseline", "pixels", "--data", str(made / "data"), "--out", str(tmp_path / "r")],
            "embed": ["embed", "--checkpoint", str(made / "tcn/checkpoints/last.pt"), "--data", str(made / "data"),
                      "--out", str(tmp_path / "r.npz")]}[command]
    fails_cleanly(capsys, [*argv, "--cache-dir", str(mine)], mine, "not a tcn-robot frame cache")
    nothing_lost(before)
    assert sorted(p.name for p in mine.iterdir()) == ["ep00000.json", "ep00000.npy"]


def test_a_cache_dir_that_is_a_file_or_inside_another_run_is_refused(made, tmp_path, capsys):
    note = tmp_path / "note.txt"
    note.write_text("mine")
    base = ["train-tcn", "--data", str(made / "data"), "--out", str(tmp_path / "r"), *TCN]
    fails_cleanly(capsys, [*base, "--cache-dir", str(note)], note, "not a folder")
    before = snapshot(made / "tcn")
    fails_cleanly(capsys, [*base, "--cache-dir", str(made / "tcn" / "cache")], "inside")
    nothing_lost(before)
    assert note.read_text() == "mine" and not (made / "tcn" / "cache").exists()


def test_a_new_or_marked_cache_dir_is_used_and_marked(made, tmp_path):
    cache = tmp_path / "cache"
    base = ["train-tcn", "--data", str(made / "data"), "--steps", "2", *TCN, "--cache-dir", str(cache)]
    assert main([*base, "--out", str(tmp_path / "r1")]) == 0
    assert (cache / ".tcn-robot-cache").is_file() and (cache / "ep00000.npy").is_file()
    assert main([*base, "--out", str(tmp_path / "r2")]) == 0  # its own cache: reused


def test_embed_never_overwrites_a_users_file(made, tmp_path, capsys):
    mine = tmp_path / "e.npz"
    np.savez(mine, mine=np.ones(3))
    before = snapshot(tmp_path)
    argv = ["embed", "--checkpoint", str(made / "tcn/checkpoints/last.pt"), "--data", str(made / "data"), "--out", str(mine)]
    fails_cleanly(capsys, argv, mine, "exists")
    fails_cleanly(capsys, [*argv, "--overwrite"], mine, "not written by this command")
    nothing_lost(before)
