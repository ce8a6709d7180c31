#!/usr/bin/env python3
"""Writes src/eval/tasks/mmlu/: one task file per MMLU subject and the group files, from the
subject list of lm-eval's tasks/mmlu/default (subject, description, category tag).

Usage: build/fixture-venv/bin/python scripts/gen_mmlu_tasks.py   (needs `pip install lm-eval`)
The data files are the layout of ../shared/data/eval/mmlu: DIR/mmlu/{dev,test}/SUBJECT_{dev,test}.csv
with the header question,choice0,choice1,choice2,choice3,answer (answer: 0-based index).
"""
import json
import pathlib

import lm_eval
import yaml

SRC = pathlib.Path(lm_eval.__file__).parent / "tasks" / "mmlu" / "default"
OUT = pathlib.Path(__file__).resolve().parent.parent / "src" / "eval" / "tasks" / "mmlu"

TEMPLATE = """\
# MMLU (hendrycks test, cais/mmlu) as lm-eval's tasks/mmlu/default/_default_template_yaml:
# zero- or few-shot from the dev split in file order (first_n), the choices " A" .. " D".
output_type: multiple_choice
test_split: test
fewshot_split: dev
fewshot_config:
  sampler: first_n
doc_to_text: "{{question.strip()}}\\nA. {{choices[0]}}\\nB. {{choices[1]}}\\nC. {{choices[2]}}\\nD. {{choices[3]}}\\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""

GROUPS = {
    "mmlu": ("mmlu", ["mmlu_stem", "mmlu_other", "mmlu_social_sciences", "mmlu_humanities"]),
    "mmlu_humanities": ("humanities", ["mmlu_humanities_tasks"]),
    "mmlu_other": ("other", ["mmlu_other_tasks"]),
    "mmlu_social_sciences": ("social sciences", ["mmlu_social_sciences_tasks"]),
    "mmlu_stem": ("stem", ["mmlu_stem_tasks"]),
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "_default_template_yaml").write_text(TEMPLATE)
    for name, (alias, members) in GROUPS.items():
        lines = [f"group: {name}"]
        if alias != name:
            lines.append(f"group_alias: {alias}")
        lines.append("task:")
        lines += [f"  - {m}" for m in members]
        lines += ["aggregate_metric_list:", "  - metric: acc", "    weight_by_size: true",
                  "metadata:", "  version: 2", ""]
        (OUT / f"_{name}.yaml").write_text("\n".join(lines))
    n = 0
    for f in sorted(SRC.glob("mmlu_*.yaml")):
        t = yaml.safe_load(f.read_text())
        sub, tag, desc = t["dataset_name"], t["tag"], t["description"]
        cols = "{choices: [choice0, choice1, choice2, choice3]}"
        (OUT / f"mmlu_{sub}.yaml").write_text(
            f"task: mmlu_{sub}\n"
            f"task_alias: {sub}\n"
            f"tag: {tag}\n"
            f"description: {json.dumps(desc)}\n"
            f"include: _default_template_yaml\n"
            f"data_files:\n"
            f"  test: {{path: mmlu/test/{sub}_test.csv, list_columns: {cols}}}\n"
            f"  dev: {{path: mmlu/dev/{sub}_dev.csv, list_columns: {cols}}}\n")
        n += 1
    print(f"wrote {n} subjects to {OUT}")


if __name__ == "__main__":
    main()
