"""Compare two `identify --json` outputs file by file: largest score difference, files whose segments or
durations differ (a behaviour check across a refactor).

Usage: python benchmarks/compare_identify.py BEFORE.jsonl AFTER.jsonl
(e.g. `timbrescope identify --json out/demo/example.wav ../shared/realdev > after.jsonl` at each commit;
rows are matched by the path below the folder given, so the two runs may start from other folders.)
"""

from __future__ import annotations

import argparse
import json
import sys

from timbrescope.errors import DataError, reported


def rows(path: str) -> dict[str, dict]:
    """An `identify --json` file's rows by the path below realdev/ or demo/."""
    out = {}
    try:
        with open(path) as lines:
            for number, line in enumerate(lines, 1):
                row = json.loads(line)
                out[row["path"].split("realdev/")[-1].split("demo/")[-1]] = row
    except OSError as exc:
        raise DataError(f"{path}: {exc.strerror}") from exc
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path}, line {number}: not a row of `identify --json`") from exc
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before")
    parser.add_argument("after")
    args = parser.parse_args()
    before, after = rows(args.before), rows(args.after)
    if before.keys() != after.keys():
        raise DataError(f"the two runs cover other files ({len(before)} and {len(after)})")
    worst, segments, durations, errors = 0.0, [], [], []
    for key, old in before.items():
        new = after[key]
        if "error" in old or "error" in new:
            errors += [key] if old.get("error") != new.get("error") else []
            continue
        scores = {item["label"]: item["score"] for item in new["instruments"]}
        worst = max(worst, max(abs(item["score"] - scores[item["label"]]) for item in old["instruments"]))
        segments += [key] if old["segments"] != new["segments"] else []
        durations += [f"{key} ({old['duration']} -> {new['duration']})"] if old["duration"] != new["duration"] else []
    print(f"{len(before)} files; largest score difference {worst:.2e}; other segments: {len(segments)} "
          f"{segments[:5]}; other durations: {len(durations)} {durations[:5]}; other errors: {len(errors)}")


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/compare_identify.py"))
