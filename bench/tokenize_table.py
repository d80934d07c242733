"""Print the BENCHMARKS.md tables from tokenizer report.json files.

Usage: python bench/tokenize_table.py runs/ml-100k/tokens runs/ml-1m/tokens ...
"""

from __future__ import annotations

import sys
from pathlib import Path

from alignrec.io import read_json


def main(folders: list[str]) -> None:
    print("| run | items | features | quantizer | collisions before -> after | moved | "
          "utilisation per level | perplexity per level | 1st code shared by 10 text NN (chance) | "
          "title top-10 retrieval before -> after | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for folder in folders:
        r = read_json(Path(folder) / "report.json")
        c = r["collisions"]
        util = " / ".join(f"{row['utilisation']:.2f}" for row in r["levels"])
        ppl = " / ".join(f"{row['perplexity']:.0f}" for row in r["levels"])
        sem = r.get("semantics", {}).get("first_code_vs_text_neighbours")
        sem_text = f"{sem['observed']:.3f} ({sem['chance']:.4f})" if sem else "n/a (no text)"
        ret = r["alignment"].get("title_retrieval")
        ret_text = (f"trained {ret['before']['trained']['top10']:.3f} -> {ret['after']['trained']['top10']:.3f}, "
                    f"held-out {ret['before']['held_out']['top10']:.3f} -> {ret['after']['held_out']['top10']:.3f}"
                    if ret else "n/a")
        print(f"| {folder} | {r['dataset']['items']} | {r['features']['kind']} | {r['quantizer']['name']} | "
              f"{c['before']['collision_rate']:.4f} -> {c['after']['collision_rate']:.4f} | "
              f"{c['resolution']['items_moved']} | {util} | {ppl} | {sem_text} | {ret_text} | "
              f"{r['timings']['total_s']:.0f} |")
    print()
    for folder in folders:
        r = read_json(Path(folder) / "report.json")
        timings = ", ".join(f"{k[:-2]} {v:.1f}" for k, v in r["timings"].items())
        line = f"- {folder}: {timings} (s)"
        if "published_codes" in r:
            p = r["published_codes"]
            line += (f"; published LETTER codes: collision rate {p['collisions']['collision_rate']:.4f}, "
                     f"first-level NMI with ours {p['first_level_nmi_with_ours']:.3f}")
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
