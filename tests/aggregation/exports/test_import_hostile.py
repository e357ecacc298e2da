"""import_richhf against hostile input: what spreadsheets write, other encodings, corrupt and
absurd records. Every problem is a CLI error naming the file (FILE:LINE for prompt lists,
FILE#INDEX for records), never a traceback; good records still import."""

from __future__ import annotations

import json
import random
import re
import struct
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from aggregation.exports.models import ImportedLabel
from modeling.data.synthetic import generate_release
from modeling.data.tfrecord import Feature, decode_example, encode_example, frame_record, iter_records, masked_crc32c

pytestmark = pytest.mark.django_db


@pytest.fixture
def release(tmp_path: Path) -> Path:
    out = tmp_path / "release"
    generate_release(out, splits={"train": 3}, seed=1, image_size=32, progress=False)
    return out


def import_richhf(release: Path, *sources: Path, prompts: Path | None = None, campaign: str = "imported") -> None:
    call_command(
        "import_richhf",
        *(str(s) for s in sources or [release / "train.tfrecord"]),
        "--images",
        str(release / "images"),
        "--prompts",
        str(prompts or release / "prompts.jsonl"),
        "--campaign",
        campaign,
        "--no-progress",
    )


def imported(campaign: str = "imported") -> int:
    return ImportedLabel.objects.filter(item__campaign__name=campaign).count()


def prompt_rows(release: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in (release / "prompts.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------- prompt lists


def test_prompts_csv_with_a_byte_order_mark_imports_everything(release: Path) -> None:
    csv_path = release / "prompts.csv"
    lines = ["filename,caption"] + [f'{row["filename"]},"{row["caption"]}"' for row in prompt_rows(release)]
    csv_path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))  # as Excel saves it
    import_richhf(release, prompts=csv_path)
    assert imported() == 3


def test_prompts_jsonl_with_a_byte_order_mark_keeps_its_first_line(release: Path) -> None:
    path = release / "prompts.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    import_richhf(release, prompts=path)
    assert imported() == 3


def test_latin1_prompts_are_a_cli_error_naming_file_and_line(release: Path) -> None:
    csv_path = release / "prompts.csv"
    rows = prompt_rows(release)
    text = "filename,caption\n" + "".join(f"{r['filename']},caf\xe9 {i}\n" for i, r in enumerate(rows))
    csv_path.write_bytes(text.encode("latin-1"))
    with pytest.raises(CommandError, match=rf"^{re.escape(str(csv_path))}:2: not UTF-8"):
        import_richhf(release, prompts=csv_path)
    assert imported() == 0


# --------------------------------------------------------------------------- records


def huge_header(length: int) -> bytes:
    """A record header claiming ``length`` bytes, with a *valid* length CRC."""
    prefix = struct.pack("<Q", length)
    return prefix + struct.pack("<I", masked_crc32c(prefix))


@pytest.mark.parametrize("length", [2**63, 2**40, 10 * 2**30])
def test_huge_record_length_with_a_valid_crc_is_named_not_allocated(
    release: Path, capsys: pytest.CaptureFixture[str], length: int
) -> None:
    path = release / "train.tfrecord"
    path.write_bytes(path.read_bytes() + huge_header(length) + b"\0" * 64)
    with pytest.raises(CommandError, match="3 imported, 0 already present, 1 problems"):
        import_richhf(release)
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{path}#3: record length {length} ") and "rest of file ignored" in err, err


def _mutations(features: dict[str, Feature]) -> list[tuple[str, dict[str, Feature]]]:
    """Records that frame correctly but carry values an import must refuse."""
    score = "artifact_score"

    def with_(name: str, feature: Feature) -> dict[str, Feature]:
        return {**features, name: feature}

    return [
        ("nan score", with_(score, Feature("float", (float("nan"),)))),
        ("inf score", with_(score, Feature("float", (float("inf"),)))),
        ("two scores", with_(score, Feature("float", (0.5, 0.5)))),
        ("no score", with_(score, Feature("float", ()))),
        ("int score", with_(score, Feature("int64", (1,)))),
        ("bytes score", with_(score, Feature("bytes", (b"0.5",)))),
        ("non-UTF-8 filename", with_("filename", Feature("bytes", (b"\xff\xfe.png",)))),
        ("empty filename", with_("filename", Feature("bytes", (b"",)))),
        ("two filenames", with_("filename", Feature("bytes", (b"a.png", b"b.png")))),
        ("float filename", with_("filename", Feature("float", (1.0,)))),
        ("garbage map", with_("artifact_map", Feature("bytes", (b"\x89PNG garbage",)))),
        ("no map", with_("artifact_map", Feature("bytes", ()))),
        ("label garbage", with_("prompt_misalignment_label", Feature("bytes", (b"\xff 1 x",)))),
        ("label too long", with_("prompt_misalignment_label", Feature("bytes", (b" ".join([b"0"] * 500),)))),
        ("label as ints", with_("prompt_misalignment_label", Feature("int64", (0, 1)))),
        ("missing feature", {k: v for k, v in features.items() if k != "overall_score"}),
    ]


def test_every_malformed_record_is_file_index_reason(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = release / "train.tfrecord"
    good = list(iter_records(path))
    features = decode_example(good[0])
    cases = _mutations(features)
    rng = random.Random(12)
    garbage = []
    for _ in range(40):  # valid framing around random damage to a real payload
        payload = bytearray(good[1])
        for _ in range(rng.randint(1, 8)):
            payload[rng.randrange(len(payload))] = rng.randrange(256)
        garbage.append(bytes(payload))
    garbage += [b"", b"\x00" * 7, b"\x0a\xff\xff\xff\xff\x0f"]
    records = [encode_example(case) for _, case in cases] + garbage + [good[2]]
    bad = release / "bad.tfrecord"
    bad.write_bytes(b"".join(frame_record(r) for r in records))
    try:
        import_richhf(release, bad)
    except CommandError:
        pass
    err = capsys.readouterr().err.strip().splitlines()
    pattern = re.compile(rf"^{re.escape(str(bad))}#(\d+): \S")
    assert err and all(pattern.match(line) for line in err), err
    named = {int(pattern.match(line).group(1)) for line in err}  # type: ignore[union-attr]
    assert set(range(len(cases))) <= named, [cases[i][0] for i in set(range(len(cases))) - named]
    assert len(records) - 1 not in named  # the good record after them all
    assert imported() >= 1


def test_a_tfrecord_that_cannot_be_opened_is_named_and_the_rest_imported(
    release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (release / "dev.tfrecord").mkdir()  # matched by the folder's *.tfrecord, but a folder
    with pytest.raises(CommandError, match="3 imported, 0 already present, 1 problems"):
        import_richhf(release, release)
    assert capsys.readouterr().err.strip() == f"{release / 'dev.tfrecord'}: cannot read the file (Is a directory)"
